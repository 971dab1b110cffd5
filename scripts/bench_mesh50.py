#!/usr/bin/env python3
"""A 50-node mesh of real `meshmon agent` release processes on 127.0.0.1.

Each node listens on a free loopback port and dials 3 random others (fixed seed; the
undirected graph is checked to be connected, and redrawn if not), shares one mesh key, and
collects the core set only at the 1 s interval (`docker_dir = ""`, `smartctl = ""`: the docker
walk and smartctl are off so that 50 agents fit a 2-core machine). Figures:

- convergence: seconds from the last agent started until every node's `meshmon status`
  lists every host as `up`;
- warm-up: 10 s (--quick 3 s; --warmup S) between convergence and each window below, so
  that the windows measure the steady state: the first frames of every origin are pushed on
  every link, and the broadcast trees form as their duplicates prune links (at a node of
  degree 11 that costs ~400 duplicates over the first ~8 s);
- redundancy: over a window (30 s; --quick 10 s), the sum of `frames_out` over every link of
  every node divided by the frames originated. Frames originated by host H in the window are
  estimated as the median, over the other nodes, of the growth of `hosts[H].frames` (the
  frames of H each node accepted): every node accepts each frame of H once, so this counts
  H's own frames. A perfect spanning tree would send N-1 frames per originated frame; the
  note gives the figure per delivery needed (redundancy / (N-1));
- frames received per node per second / hosts: the sum of `frames_in` over a node's links
  (heartbeats, which carry the announcements, included), per second, divided by the nodes;
- CPU per node: utime+stime from /proc/PID/stat over the same window, median/min/max over
  the nodes (% of one core), next to a lone agent started with the mesh (same collectors,
  no link) and measured over the same window: the baseline, since this machine's speed
  varies by 2x from day to day; and the same from the threads' run times in
  /proc/PID/task/*/schedstat (ns: a 30 s window at 0.25 % holds only 7-8 ticks of 10 ms);
- then 5 random nodes (fixed seed; redrawn until the survivors stay connected) are killed with
  SIGKILL, and the same figures are taken again: time until every survivor sees every
  survivor up and the 5 killed hosts down (a host turns down 5 s after it was last heard),
  redundancy and CPU over a second window.

Prints one Markdown table `| figure | median | min | max | target | note |`. Everything it
starts is killed on every exit path. Usage: scripts/bench_mesh50.py [--nodes 50]
[--window 30] [--warmup 10] [--kill 5] [--seed 7] [--quick] [--no-build] [--keep]
[--per-link] (--keep leaves the temporary directory: configs, agent logs, the status
snapshots of the last window; --per-link logs each node's frames received per link).
"""
import argparse, atexit, json, os, random, signal, socket, statistics, subprocess, sys, tempfile, time, shutil
from concurrent.futures import ThreadPoolExecutor

from bench_footprint import cpu_ticks, sched_ns  # same folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
PROCS = {}  # name -> Popen


def log(*a):
    print("bench_mesh50:", *a, file=sys.stderr, flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports




def connected(nodes, edges):
    nodes = set(nodes)
    if not nodes:
        return True
    adj = {n: set() for n in nodes}
    for a, b in edges:
        if a in nodes and b in nodes:
            adj[a].add(b)
            adj[b].add(a)
    start = next(iter(nodes))
    seen, todo = {start}, [start]
    while todo:
        for m in adj[todo.pop()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen == nodes


def stop_all(*_):
    for p in PROCS.values():
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
    for p in PROCS.values():
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--window", type=int)
    ap.add_argument("--kill", type=int, default=5)
    ap.add_argument("--degree", type=int, default=3)
    ap.add_argument("--mean-degree", type=float,
                    help="a random connected graph with this mean degree instead of --degree dials")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--warmup", type=float,
                    help="seconds between convergence and each window (default 10; --quick 3)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (configs, logs, snapshots.json)")
    ap.add_argument("--per-link", action="store_true",
                    help="log every node's frames received per second on each link")
    a = ap.parse_args()
    n = a.nodes or (20 if a.quick else 50)
    window = a.window or (10 if a.quick else 30)
    warmup = a.warmup if a.warmup is not None else (3 if a.quick else 10)
    target = os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent", "--bin", "meshmon"],
                       cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=target))
    exe = f"{target}/release/meshmon"
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    tmp = tempfile.mkdtemp(prefix="meshmon-mesh50-")
    if not a.keep:
        atexit.register(shutil.rmtree, tmp, True)
    else:
        log(f"keeping {tmp}")

    rng = random.Random(a.seed)
    names = [f"n{i:02d}" for i in range(n)]
    while True:
        if a.mean_degree:
            want = round(n * a.mean_degree / 2)
            pairs = set()
            while len(pairs) < want:
                x, y = rng.sample(names, 2)
                pairs.add((min(x, y), max(x, y)))
            dials = {x: [y for (p, y) in sorted(pairs) if p == x] for x in names}
        else:
            dials = {x: rng.sample([y for y in names if y != x], a.degree) for x in names}
        edges = [(x, y) for x in names for y in dials[x]]
        if connected(names, edges):
            break
    ports = dict(zip(names, free_ports(n)))
    subprocess.run([exe, "keygen", "--out", f"{tmp}/mesh.key"], check=True, stdout=subprocess.DEVNULL)
    def write_config(x, port, neighbours):
        cfg[x] = f"{tmp}/{x}.toml"
        nb = ", ".join(f'"127.0.0.1:{p}"' for p in neighbours)
        with open(cfg[x], "w") as f:
            f.write(f'[node]\nname = "{x}"\nlisten = "127.0.0.1:{port}"\nneighbours = [{nb}]\n'
                    f'key_file = "{tmp}/mesh.key"\n\n[collect]\ninterval = "1s"\ndocker_dir = ""\nsmartctl = ""\n')

    cfg = {}
    for x in names:
        write_config(x, ports[x], [ports[y] for y in dials[x]])
    # A lone agent with the same collectors and no link, measured over the same windows: the
    # baseline that the mesh's cost is read against (this machine's speed varies by 2x).
    write_config("lone", free_ports(1)[0], [])
    log(f"starting {n} agents ({len(edges)} links, seed {a.seed}) and a lone one")
    t_first = time.monotonic()
    for x in names + ["lone"]:
        PROCS[x] = subprocess.Popen([exe, "agent", "--config", cfg[x]], start_new_session=True,
                                    env=dict(os.environ, MESHMON_LOG="warn", NO_COLOR="1"),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=open(f"{tmp}/{x}.log", "w"))
    t_started = time.monotonic()

    pool = ThreadPoolExecutor(max_workers=6)

    def status(x):
        try:
            r = subprocess.run([exe, "status", "--config", cfg[x], "--format", "json", "--timeout", "3s"],
                               capture_output=True, text=True, timeout=8)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError):
            return None

    def snapshot(alive):
        return dict(zip(alive, pool.map(status, alive)))

    def converged(alive, dead, timeout):
        t0 = time.monotonic()
        last = ""
        while time.monotonic() - t0 < timeout:
            snap = snapshot(alive)
            bad = 0
            for x, s in snap.items():
                up = {h["host"] for h in (s or {}).get("hosts", []) if h["status"] == "up"}
                if s is None or not (set(alive) - {x}) <= up or up & set(dead):
                    bad += 1
            if bad == 0:
                return time.monotonic()
            last = f"{bad} of {len(alive)} nodes not yet converged"
            time.sleep(0.5)
        log("convergence timed out:", last)
        return None

    def window_figures(alive):
        for x in alive:
            if PROCS[x].poll() is not None:
                raise SystemExit(f"agent {x} exited; its log: {open(f'{tmp}/{x}.log').read()[-2000:]}")
        c0 = {x: cpu_ticks(PROCS[x].pid) for x in alive + ["lone"]}
        n0 = {x: sched_ns(PROCS[x].pid) for x in alive + ["lone"]}
        t0 = time.monotonic()
        s0 = snapshot(alive)
        time.sleep(window)
        s1 = snapshot(alive)
        el = time.monotonic() - t0
        if a.keep:
            json.dump({"s0": s0, "s1": s1, "el": el}, open(f"{tmp}/snapshots.json", "w"))
        cpu = [(cpu_ticks(PROCS[x].pid) - c0[x]) / TICK / el * 100 for x in alive]
        lone = (cpu_ticks(PROCS["lone"].pid) - c0["lone"]) / TICK / el * 100
        ns = {x: (sched_ns(PROCS[x].pid) - n0[x]) / 1e9 / el * 100 for x in alive + ["lone"]}
        sched = ([ns[x] for x in alive], ns["lone"])
        out = 0
        rx = []  # frames received per node per second / hosts (heartbeats included)
        def link_growth(x, field):
            """Per link of x (as it is in s1): how much `field` grew over the window."""
            key = lambda l: (l["peer"], l["addr"], l["direction"])
            before = {key(l): l[field] for l in s0[x]["links"]}
            return [(l["peer"], l[field] - before.get(key(l), 0)) for l in s1[x]["links"]]

        for x in alive:
            if s0[x] and s1[x]:
                per = link_growth(x, "frames_in")
                got = sum(g for _, g in per)
                rx.append(got / el / len(alive))
                if a.per_link:
                    log(f"{x}: degree {len(per)}, rx {got / el:.1f}/s: "
                        + " ".join(f"{p}={g / el:.1f}" for p, g in sorted(per, key=lambda pg: pg[1])))
                out += sum(g for _, g in link_growth(x, "frames_out"))
        orig = 0
        for h in alive:
            growth = []
            for x in alive:
                if x == h or not (s0[x] and s1[x]):
                    continue
                f0 = {e["host"]: e["frames"] for e in s0[x]["hosts"]}
                f1 = {e["host"]: e["frames"] for e in s1[x]["hosts"]}
                if h in f0 and h in f1:
                    growth.append(f1[h] - f0[h])
            if growth:
                orig += statistics.median(growth)
        return out, orig, cpu, el, rx, lone, sched

    rows = []

    def row(fig, med, lo="-", hi="-", target="-", note=""):
        rows.append(f"| {fig} | {med} | {lo} | {hi} | {target} | {note} |")

    def report(label, t_conv, out, orig, cpu, el, rx, lone, sched, alive_n, note):
        row(f"{label}: time until every node sees every host", f"{t_conv:.1f} s" if t_conv is not None else "not reached",
            target="-", note=note)
        red = out / orig if orig else float("nan")
        row(f"{label}: frames sent per frame originated", f"{red:.1f}",
            note=f"{out} frames out / {orig:.0f} originated in {el:.0f} s; {red / (alive_n - 1):.2f} per delivery needed (N-1 = {alive_n - 1})")
        if rx:
            row(f"{label}: frames received per node per second / hosts", f"{statistics.median(rx):.2f}",
                f"{min(rx):.2f}", f"{max(rx):.2f}", target="<= 1.5",
                note=f"sum of frames_in over a node's links (heartbeats and announcements included), from {warmup:.0f} s after convergence")
        row(f"{label}: CPU per node (% of one core)", f"{statistics.median(cpu):.2f}", f"{min(cpu):.2f}", f"{max(cpu):.2f}",
            note=f"median over {alive_n} nodes, {el:.0f} s window from {warmup:.0f} s after convergence")
        row(f"{label}: CPU of a lone agent, same window (% of one core)", f"{lone:.2f}",
            note=f"same collectors, no link: the median node costs {statistics.median(cpu) / lone:.2f}x this" if lone else "same collectors, no link")
        s_cpu, s_lone = sched
        row(f"{label}: CPU per node, schedstat (% of one core)", f"{statistics.median(s_cpu):.3f}",
            f"{min(s_cpu):.3f}", f"{max(s_cpu):.3f}", target="<= 0.25",
            note=f"threads' run time in ns over the same window; lone agent {s_lone:.3f}")

    tc = converged(names, [], 90 if not a.quick else 45)
    tp = time.monotonic()
    snapshot(names)
    poll_s = time.monotonic() - tp
    conv = tc - t_started if tc else None
    log(f"converged in {conv} s; {warmup} s of warm-up, then a {window} s window")
    time.sleep(warmup)
    res1 = window_figures(names)
    label = f"mesh{n}"
    report(label, conv, *res1, n, f"{n} nodes; from the last agent started ({t_started - t_first:.1f} s to start all); "
           f"one poll of every node's status takes ~{poll_s:.1f} s")

    if a.kill > 0:
        while True:
            victims = rng.sample(names, a.kill)
            alive = [x for x in names if x not in victims]
            if connected(alive, edges):
                break
        log(f"killing {', '.join(victims)}")
        for v in victims:
            os.killpg(PROCS[v].pid, signal.SIGKILL)
            PROCS[v].wait()
        t_kill = time.monotonic()
        # The longest silence of a survivor as seen by another survivor, over 15 s after the
        # kill: status' last_seen_ms_ago, polled as fast as the polls go.
        worst = 0
        tc2 = None  # also: when every survivor first sees every survivor up and the dead down
        while time.monotonic() - t_kill < 15:
            snap = snapshot(alive)
            ok = True
            for x, st in snap.items():
                up = {h["host"] for h in (st or {}).get("hosts", []) if h["status"] == "up"}
                ok = ok and st is not None and (set(alive) - {x}) <= up and not (up & set(victims))
                for h in (st or {}).get("hosts", []):
                    if h["host"] in alive and h["host"] != x:
                        worst = max(worst, h.get("last_seen_ms_ago", 0))
            if ok and tc2 is None:
                tc2 = time.monotonic()
        row(f"mesh{n} after killing {a.kill}: longest silence of a survivor at a survivor",
            f"{worst / 1000:.1f} s", target="<= 3 s + the 1 s interval",
            note="max over 15 s of polls of every survivor's status (last_seen_ms_ago)")
        if tc2 is None:
            tc2 = converged(alive, victims, 60 if not a.quick else 30)
        conv2 = tc2 - t_kill if tc2 else None
        log(f"survivors converged in {conv2} s; {warmup} s of warm-up, then a {window} s window")
        time.sleep(warmup)
        res2 = window_figures(alive)
        report(f"{label} after killing {a.kill}", conv2, *res2, len(alive),
               f"{len(alive)} survivors, from the kill; killed hosts must read down (5 s after last heard)")
    print(f"\n{n} real agents on 127.0.0.1, " + (f"random connected graph of mean degree {a.mean_degree}" if a.mean_degree else f"each dialling {a.degree} random others") + f" (seed {a.seed}), "
          f"core collectors at 1 s (docker and smartctl off)\n")
    print("| figure | median | min | max | target | note |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
