#!/usr/bin/env python3
"""A dashboard node under a simulated fleet: RSS and CPU of one release `meshmon agent` in the
dashboard role (store, alerts with the built-in rules) while the meshmon-sim `fleet_sim`
example originates N simulated hosts (default 500, 3 series each, random walk) through the
real protocol into it every second; and, for comparison, the same fleet into a node without
the dashboard role. Each node is measured over DURATION seconds (default 60) after a warm-up
of 20 s: CPU from /proc/PID/stat (utime+stime), RSS from /proc/PID/status. Prints one table.

Everything listens on 127.0.0.1; everything it starts is stopped on every exit path.

Usage: scripts/bench_dashboard.py [--hosts 500] [--duration 60] [--no-build]
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

from bench_footprint import TICK, cpu_ticks, free_port, rss_kb  # same folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(exe, sim, tmp, dashboard, hosts, duration, procs):
    """Starts one node and the fleet; returns (rss median kB, rss max kB, cpu %, frames/s)."""
    port = free_port()
    name = "dash" if dashboard else "relay"
    cfg = f"{tmp}/{name}.toml"
    with open(cfg, "w") as f:
        f.write(f'[node]\nname = "{name}"\nlisten = "127.0.0.1:{port}"\ndashboard = {str(dashboard).lower()}\n'
                f'[collect]\ninterval = "1s"\ndocker_dir = ""\nsmartctl = ""\ngpu = false\n'
                f'[store]\npath = "{tmp}/{name}.db"\n')
    node = subprocess.Popen([exe, "agent", "--config", cfg], stdout=subprocess.DEVNULL,
                            stderr=open(f"{tmp}/{name}.log", "w"))
    procs.append(node)
    time.sleep(1.0)
    fleet = subprocess.Popen([sim, "--target", f"127.0.0.1:{port}", "--hosts", str(hosts),
                              "--pattern", "walk", "--report", "3600s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(fleet)
    time.sleep(20)  # warm-up: every host joined, tables sent, store created
    for p in (node, fleet):
        if p.poll() is not None:
            raise SystemExit(f"{p.args[0]} exited during the warm-up (see {tmp}/{name}.log)")
    c0, t0 = cpu_ticks(node.pid), time.monotonic()
    rss = []
    while time.monotonic() - t0 < duration:
        rss.append(rss_kb(node.pid))
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    cpu = (cpu_ticks(node.pid) - c0) / TICK / elapsed * 100
    for p in (fleet, node):
        p.terminate()
    for p in (fleet, node):
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    return statistics.median(rss), max(rss), cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent", "--bin", "meshmon",
                        "-p", "meshmon-sim", "--example", "fleet_sim"], cwd=ROOT, check=True)
    exe, sim = f"{target}/release/meshmon", f"{target}/release/examples/fleet_sim"
    tmp = tempfile.mkdtemp(prefix="meshmon-benchdash-")
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

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(1)))
    try:
        rows = []
        for dashboard in (True, False):
            med, mx, cpu = measure(exe, sim, tmp, dashboard, a.hosts, a.duration, procs)
            rows.append((dashboard, med, mx, cpu))
        print(f"\n{a.hosts} simulated hosts (3 series each) at 1 s into one release node, "
              f"{a.duration} s after a 20 s warm-up\n")
        print("| node | RSS median (MB) | RSS max (MB) | CPU (% of one core) | CPU per host-frame (us) | target |")
        print("|---|---:|---:|---:|---:|---|")
        for dashboard, med, mx, cpu in rows:
            per_frame = cpu / 100 / a.hosts * 1e6
            target = "RSS <= 40, CPU <= 3" if dashboard else "-"
            print(f"| {'dashboard' if dashboard else 'not a dashboard'} | {med / 1024:.1f} | {mx / 1024:.1f} "
                  f"| {cpu:.2f} | {per_frame:.1f} | {target} |")
    finally:
        stop()


if __name__ == "__main__":
    main()
