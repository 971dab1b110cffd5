#!/usr/bin/env python3
"""Joining a large mesh: how soon a node that joins knows every host's name and details.

A node (`meshmon agent`, release build, not a dashboard) is fed N simulated hosts (the
meshmon-sim `fleet_sim` example, aligned on the wall clock as agents collect) through real
sockets on 127.0.0.1, for WARMUP s: longer than the hosts' 30 s host-info period, so it holds
every host's host info and series table. Then a second node joins with the first as its
only neighbour. When a link is accepted, a node hands the newcomer every origin's latest
host info and series table (PROTOCOL.md section 5, step 5): 2 N frames, against a credit
window of 1,024. The script polls `meshmon query hosts --format json` on the newcomer every
0.25 s and reports when it knew every host's details (a row with its `os`; a host heard only
by its samples has a row without them), and how many it knew 2 s after it started.

For each binary given (label=PATH; default: this tree's release build), REPEATS runs.
Everything listens on 127.0.0.1; everything it starts is stopped on every exit path.

Usage: scripts/bench_join.py [--hosts 1500] [--repeats 1] [--warmup 35] [--limit 40]
                             [--bin before=/path/meshmon --bin after=/path/meshmon] [--no-build]
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

from bench_footprint import free_port  # same folder
from bench_rx import start_node, stop  # same folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def named(exe, cfg, prefix):
    """Hosts of the fleet the node at `cfg` knows by their host info."""
    r = subprocess.run([exe, "query", "hosts", "--config", cfg, "--format", "json"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return None
    try:
        rows = json.loads(r.stdout)
    except json.JSONDecodeError:
        return None
    return sum(1 for row in rows if row.get("host", "").startswith(prefix) and row.get("os"))


def run(exe, sim, tmp, a, procs):
    _, port = start_node(exe, tmp, "first", False, procs)
    time.sleep(1.0)
    fleet = subprocess.Popen([sim, "--target", f"127.0.0.1:{port}", "--hosts", str(a.hosts),
                              "--pattern", "steady", "--aligned", "--report", "60s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(fleet)
    time.sleep(a.warmup)
    first = named(exe, f"{tmp}/first.toml", "sim-")
    if first != a.hosts:
        raise SystemExit(f"the first node knows {first} of {a.hosts} hosts after the warm-up")
    start_node(exe, tmp, "joiner", False, procs, neighbours=[port])
    t0 = time.monotonic()
    at_2s, full_at, last = None, None, 0
    while time.monotonic() - t0 < a.limit:
        time.sleep(0.25)
        n = named(exe, f"{tmp}/joiner.toml", "sim-")
        if n is None:
            continue
        last = n
        dt = time.monotonic() - t0
        if at_2s is None and dt >= 2.0:
            at_2s = n
        if n >= a.hosts:
            full_at = dt
            break
    stop(procs)
    return full_at, at_2s if at_2s is not None else last, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=35.0)
    ap.add_argument("--limit", type=float, default=40.0, help="give up after this many s")
    ap.add_argument("--bin", action="append", default=[], help="label=PATH (repeatable)")
    ap.add_argument("--sim", help="fleet_sim binary (default: this tree's release build)")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "meshmon"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-sim",
                        "--example", "fleet_sim"], cwd=ROOT, check=True)
    sim = a.sim or f"{target}/release/examples/fleet_sim"
    bins = [b.split("=", 1) for b in a.bin] or [["this tree", f"{target}/release/meshmon"]]
    procs = []
    tmp = tempfile.mkdtemp(prefix="bench_join.")

    def cleanup(*_):
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(1)

    signal.signal(signal.SIGTERM, cleanup)
    signal.signal(signal.SIGINT, cleanup)
    rows = []
    try:
        for label, exe in bins:
            for r in range(a.repeats):
                full_at, at_2s, last = run(exe, sim, tmp, a, procs)
                print(f"  {label} run {r + 1}: every host named after "
                      f"{'%.2f s' % full_at if full_at is not None else 'not within %g s (%d)' % (a.limit, last)}"
                      f", {at_2s} named at 2 s", flush=True)
                rows.append((label, full_at, at_2s))
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{a.hosts} hosts; a node joins a node that knows them all (credit window 1,024):\n")
    print("| binary | runs | every host named after, s (median) | named at 2 s (median) |")
    print("|---|---:|---:|---:|")
    for label, _ in bins:
        mine = [x for x in rows if x[0] == label]
        full = [x[1] for x in mine if x[1] is not None]
        med = f"{statistics.median(full):.2f}" if len(full) == len(mine) else f"> {a.limit:g} in {len(mine) - len(full)}"
        print(f"| {label} | {len(mine)} | {med} | {statistics.median(x[2] for x in mine):.0f} of {a.hosts} |")


if __name__ == "__main__":
    main()
