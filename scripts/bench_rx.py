#!/usr/bin/env python3
"""The receive path: CPU per received frame of one release `meshmon agent` fed N simulated
hosts (the meshmon-sim `fleet_sim` example, `--pattern steady`, one frame per host per second)
through real sockets on 127.0.0.1. `--send` says how the hosts' frames are timed: `spread`
evenly over the second (the worst case: one frame per wake-up of the node, as from hosts whose
clocks disagree), `aligned` at once on the wall clock's seconds as agents collect (in ten
slots of 100 hosts at 1,000 hosts; the default runs both). The node is not a dashboard and
has no other neighbour, so it only receives: ZMTP, the guard, the mesh task, gossip (open,
de-duplicate, count).

For each binary given (label=PATH; default: this tree's release build) and each N (default
200 and 1000), REPEATS runs (default 3): start the node, start the fleet, wait WARMUP s
(every host joined, tables sent), then measure over WINDOW s:
- CPU of the node: utime+stime from /proc/PID/stat (clock ticks), the sum of the run
  times of all its threads from /proc/PID/task/*/schedstat (nanoseconds), and the run time
  of its main thread alone, which runs the runtime (sockets, mesh task, gossip) and none of
  the collectors;
- frames received: growth of the fleet's `sent` counter (credit-bearing frames handed to the
  socket; the link's heartbeat, one per second, is left out).
Also, per binary, the same node with no fleet over the same window (its own collectors, 1 s
tick): the idle baseline. The table gives CPU us per received frame, median of the repeats:
total (all the node's CPU / frames) and net (minus the idle baseline), and the main
thread's net of its idle baseline: what the frames cost, without the node's own collectors.

With --dashboard, the same at the first N for a dashboard node (store, alerts), for
information. With --link, the same at the first N for a node that receives on its outbound
link: the fleet feeds a second node (same binary), which the measured node dials; frames
counted are the fleet's (the second node forwards each once).

Everything listens on 127.0.0.1; everything it starts is stopped on every exit path.

Usage: scripts/bench_rx.py [--hosts 200,1000] [--send spread,aligned] [--repeats 3] [--window 30] [--warmup 15]
                           [--bin before=/path/meshmon --bin after=/path/meshmon]
                           [--dashboard] [--link] [--no-build]
"""
import argparse, os, re, shutil, signal, statistics, subprocess, sys, tempfile, threading, time

from bench_footprint import TICK, cpu_ticks, free_port, sched_ns  # same folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



class FleetReader:
    """Reads the fleet's report lines (`--report 1s`) and keeps the latest `sent` counter."""

    def __init__(self, proc):
        self.sent = None
        self.line = ""
        threading.Thread(target=self._run, args=(proc,), daemon=True).start()

    def _run(self, proc):
        for line in proc.stdout:
            self.line = line.strip()
            m = re.search(r"\bsent=(\d+)", line)
            if m:
                self.sent = int(m.group(1))


def start_node(exe, tmp, name, dashboard, procs, neighbours=()):
    port = free_port()
    cfg = f"{tmp}/{name}.toml"
    links = ", ".join(f'"127.0.0.1:{p}"' for p in neighbours)
    with open(cfg, "w") as f:
        f.write(f'[node]\nname = "{name}"\nlisten = "127.0.0.1:{port}"\ndashboard = {str(dashboard).lower()}\n'
                f'neighbours = [{links}]\n'
                f'[collect]\ninterval = "1s"\ndocker_dir = ""\nsmartctl = ""\ngpu = false\n'
                f'[store]\npath = "{tmp}/{name}.db"\n')
    node = subprocess.Popen([exe, "agent", "--config", cfg], stdout=subprocess.DEVNULL,
                            stderr=open(f"{tmp}/{name}.log", "w"))
    procs.append(node)
    return node, port


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    procs.clear()


def main_thread_ns(pid):
    """Run time of the node's main thread (the runtime's), ns."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def window(node, seconds, fleet=None):
    """CPU (ticks, s of all threads, s of the main thread) of `node` and frames the fleet
    sent over `seconds`."""
    s0 = fleet.sent if fleet else 0
    c0, n0, m0, t0 = cpu_ticks(node.pid), sched_ns(node.pid), main_thread_ns(node.pid), time.monotonic()
    time.sleep(seconds)
    c1, n1, m1, t1 = cpu_ticks(node.pid), sched_ns(node.pid), main_thread_ns(node.pid), time.monotonic()
    s1 = fleet.sent if fleet else 0
    return (c1 - c0) / TICK, (n1 - n0) / 1e9, (m1 - m0) / 1e9, t1 - t0, (s1 or 0) - (s0 or 0)


def run_fleet(exe, sim, tmp, hosts, kind, send, a, procs):
    """kind: "node", "dashboard", or "link" (the fleet feeds a second node of the same binary,
    which the measured node dials: it receives on its outbound link)."""
    dashboard = kind == "dashboard"
    name = f"{kind}{hosts}"
    if kind == "link":
        _, port = start_node(exe, tmp, f"feeder{hosts}", False, procs)
        node, _ = start_node(exe, tmp, name, False, procs, neighbours=[port])
    else:
        node, port = start_node(exe, tmp, name, dashboard, procs)
    time.sleep(1.0)
    fleet = subprocess.Popen([sim, "--target", f"127.0.0.1:{port}", "--hosts", str(hosts),
                              "--pattern", "steady", "--report", "1s"]
                             + (["--aligned"] if send == "aligned" else []),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(fleet)
    reader = FleetReader(fleet)
    time.sleep(a.warmup)
    for p in (node, fleet):
        if p.poll() is not None:
            raise SystemExit(f"{p.args[0]} exited during the warm-up (see {tmp}/{name}.log)")
    if reader.sent is None:
        raise SystemExit(f"no report from the fleet: {reader.line!r}")
    ticks_s, sched_s, main_s, elapsed, frames = window(node, a.window, reader)
    if frames <= 0:
        raise SystemExit(f"the fleet sent nothing during the window: {reader.line!r}")
    if "link=up" not in reader.line or "reconnects=0" not in reader.line:
        print(f"  warning: fleet state at the end: {reader.line}", file=sys.stderr)
    stop(procs)
    return ticks_s, sched_s, main_s, elapsed, frames


def run_idle(exe, tmp, dashboard, a, procs):
    node, _ = start_node(exe, tmp, "idle", dashboard, procs)
    time.sleep(a.warmup)
    ticks_s, sched_s, main_s, elapsed, _ = window(node, a.window)
    stop(procs)
    return ticks_s / elapsed, sched_s / elapsed, main_s / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", default="200,1000")
    ap.add_argument("--send", default="spread,aligned",
                    help="how the hosts' frames are timed: spread, aligned, or both (comma-separated)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--window", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--bin", action="append", default=[], help="label=PATH of a meshmon binary")
    ap.add_argument("--sim", help="fleet_sim binary (default: this tree's release build)")
    ap.add_argument("--dashboard", action="store_true", help="also a dashboard node, first N")
    ap.add_argument("--link", action="store_true",
                    help="also a node receiving on its outbound link (the fleet feeds a node it dials), first N")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent", "--bin", "meshmon",
                        "-p", "meshmon-sim", "--example", "fleet_sim"], cwd=ROOT, check=True)
    bins = [b.split("=", 1) for b in a.bin] or [["this tree", f"{target}/release/meshmon"]]
    sim = a.sim or f"{target}/release/examples/fleet_sim"
    hosts = [int(h) for h in a.hosts.split(",")]
    tmp = tempfile.mkdtemp(prefix="meshmon-benchrx-")
    procs = []

    def cleanup(*_):
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(1)))
    sends = a.send.split(",")
    if not set(sends) <= {"spread", "aligned"}:
        raise SystemExit(f"--send: expected spread and/or aligned, got {a.send!r}")
    kinds = [("node", n, send) for n in hosts for send in sends] \
        + ([("dashboard", hosts[0], sends[0])] if a.dashboard else []) \
        + ([("link", hosts[0], sends[0])] if a.link else [])
    idle, runs = {}, {}
    try:
        # Binaries alternate within each repeat, so that they share the machine's noise.
        for dashboard in sorted({k == "dashboard" for k, _, _ in kinds}):
            for _ in range(a.repeats):
                for label, exe in bins:
                    idle.setdefault((label, dashboard), []).append(run_idle(exe, tmp, dashboard, a, procs))
        for kind, n, send in kinds:
            dashboard = kind == "dashboard"
            for r in range(a.repeats):
                for label, exe in bins:
                    ticks_s, sched_s, main_s, elapsed, frames = run_fleet(exe, sim, tmp, n, kind, send, a, procs)
                    base_sched = statistics.median(i[1] for i in idle[(label, dashboard)])
                    base_main = statistics.median(i[2] for i in idle[(label, dashboard)])
                    run = {
                        "fps": frames / elapsed,
                        "cpu_pct": ticks_s / elapsed * 100,
                        "us_ticks": ticks_s / frames * 1e6,
                        "us_sched": sched_s / frames * 1e6,
                        "net_sched": (sched_s - base_sched * elapsed) / frames * 1e6,
                        "net_main": (main_s - base_main * elapsed) / frames * 1e6,
                    }
                    runs.setdefault((label, kind, n, send), []).append(run)
                    print(f"  {label} {kind} N={n} {send} run {r + 1}: "
                          f"{run['fps']:.0f} frames/s, {run['cpu_pct']:.2f} % CPU, "
                          f"{run['us_ticks']:.1f} us/frame (utime+stime), "
                          f"{run['us_sched']:.1f} us/frame (schedstat), "
                          f"{run['net_main']:.1f} us/frame (main thread, net)", file=sys.stderr, flush=True)
    finally:
        cleanup()
    rows = []
    names = {"node": "not a dashboard", "dashboard": "dashboard",
             "link": "not a dashboard, on its outbound link"}
    for kind, n, send in kinds:
        dashboard = kind == "dashboard"
        for label, _ in bins:
            rs = runs[(label, kind, n, send)]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            rng = {k: (min(r[k] for r in rs), max(r[k] for r in rs)) for k in rs[0]}
            base_t = statistics.median(i[0] for i in idle[(label, dashboard)]) * 100
            base_s = statistics.median(i[1] for i in idle[(label, dashboard)]) * 100
            rows.append((label, names[kind], n, send, med, rng, base_t, base_s))
    print(f"\nReceive path: N simulated hosts at 1 s into one release node on 127.0.0.1; median of "
          f"{a.repeats} runs, {a.window} s windows after {a.warmup} s warm-up\n")
    print("| binary | node | N | hosts send | frames/s | CPU % (utime+stime) | idle CPU % | us/frame, "
          "utime+stime (min-max) | us/frame, schedstat (min-max) | net of idle, us/frame (schedstat) "
          "| main thread net of idle, us/frame (min-max) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, kind, n, send, med, rng, base_t, base_s in rows:
        lo, hi = rng["us_sched"]
        tlo, thi = rng["us_ticks"]
        mlo, mhi = rng["net_main"]
        print(f"| {label} | {kind} | {n} | {send} | {med['fps']:.0f} "
              f"| {med['cpu_pct']:.2f} | {base_t:.2f} | {med['us_ticks']:.1f} ({tlo:.1f}-{thi:.1f}) "
              f"| {med['us_sched']:.1f} ({lo:.1f}-{hi:.1f}) | {med['net_sched']:.1f} "
              f"| {med['net_main']:.1f} ({mlo:.1f}-{mhi:.1f}) |")


if __name__ == "__main__":
    main()
