#!/usr/bin/env python3
"""Agent footprint next to node_exporter, measured in the same run.

Starts two release `meshmon agent`s linked on 127.0.0.1 (the full core collector set at the
1 s interval) and Debian's prometheus-node-exporter on 127.0.0.1, scraped once a second, then
samples both processes for DURATION seconds (default 60): CPU from /proc/PID/stat
(utime+stime) and RSS from /proc/PID/status. Prints one table. Everything it starts is
stopped on every exit path.

Usage: scripts/bench_footprint.py [--duration 60] [--no-build]
"""
import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "meshmon")
    ne = shutil.which("prometheus-node-exporter")
    if ne is None:
        print("installing prometheus-node-exporter (Debian) ...", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "prometheus-node-exporter"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        ne = shutil.which("prometheus-node-exporter")
    tmp = tempfile.mkdtemp(prefix="meshmon-bench-")
    procs = []

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(1)))
    try:
        pa, pb, pn = free_port(), free_port(), free_port()
        for name, port, nb in [("bench-a", pa, f'"127.0.0.1:{pb}"'), ("bench-b", pb, "")]:
            with open(f"{tmp}/{name}.toml", "w") as f:
                f.write(f'[node]\nname = "{name}"\nlisten = "127.0.0.1:{port}"\nneighbours = [{nb}]\n'
                        f'[collect]\ninterval = "1s"\ndocker_dir = ""\nsmartctl = ""\n')
            procs.append(subprocess.Popen([exe, "agent", "--config", f"{tmp}/{name}.toml"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        agent = procs[0]
        nexp = subprocess.Popen([ne, f"--web.listen-address=127.0.0.1:{pn}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nexp)
        time.sleep(5)  # warm up: first scrape, first frames, link up
        url = f"http://127.0.0.1:{pn}/metrics"
        start = time.monotonic()
        c0 = {p.pid: cpu_ticks(p.pid) for p in (agent, nexp)}
        rss = {agent.pid: [], nexp.pid: []}
        scrape_bytes = 0
        while time.monotonic() - start < args.duration:
            t = time.monotonic()
            with urllib.request.urlopen(url, timeout=5) as r:
                scrape_bytes += len(r.read())
            for p in (agent, nexp):
                rss[p.pid].append(rss_kb(p.pid))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        elapsed = time.monotonic() - start
        cpu = {pid: (cpu_ticks(pid) - c0[pid]) / TICK / elapsed * 100 for pid in c0}
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"process {p.args[0]} exited during the run")

        def row(fig, a, n, target, fmt):
            ratio = f"{a / n:.2f}x" if n else "-"
            print(f"| {fig:<22} | {fmt.format(a):>12} | {fmt.format(n):>14} | {target:>10} | {ratio:>7} |")

        print(f"\nfootprint over {elapsed:.0f} s at a 1 s interval, same run (meshmon: agent A of a 2-node mesh; "
              f"node_exporter {ne}: scraped every second, {scrape_bytes / elapsed / 1024:.0f} KiB/s)\n")
        print(f"| {'figure':<22} | {'meshmon':>12} | {'node_exporter':>14} | {'target':>10} | {'ratio':>7} |")
        print(f"|{'-' * 24}|{'-' * 14}|{'-' * 16}|{'-' * 12}|{'-' * 9}|")
        row("RSS median (MB)", statistics.median(rss[agent.pid]) / 1024, statistics.median(rss[nexp.pid]) / 1024, "<= 6", "{:.1f}")
        row("RSS max (MB)", max(rss[agent.pid]) / 1024, max(rss[nexp.pid]) / 1024, "", "{:.1f}")
        row("CPU (% of one core)", cpu[agent.pid], cpu[nexp.pid], "<= 0.3", "{:.2f}")
    finally:
        stop()


if __name__ == "__main__":
    main()
