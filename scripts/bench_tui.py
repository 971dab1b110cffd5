#!/usr/bin/env python3
"""`meshmon tui` figures: the drawing benchmark with 100 synthetic hosts (the tui_bench
example: startup to first frame, redraw at 200x60, memory with 7 days of history), then the
real release binary attached to a headless demo mesh inside a 200x60 tmux: time to the first
full frame, RSS, and CPU while idle (1 Hz redraw) in the fleet and host views.

Everything it starts (the demo, a private tmux server) is stopped on every exit path.

Usage: scripts/bench_tui.py [--nodes 5] [--duration 30] [--no-build]
"""
import argparse, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
SOCK = f"meshmon-bench-{os.getpid()}"


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCK, *args], capture_output=True, text=True)


def capture():
    return tmux("capture-pane", "-p", "-t", "tui").stdout


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_pct(pid, seconds):
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    time.sleep(seconds)
    return 100.0 * (cpu_ticks(pid) - c0) / TICK / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target"))
    target = env["CARGO_TARGET_DIR"]
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "meshmon-agent"], cwd=ROOT, env=env, check=True)
        subprocess.run(["cargo", "build", "--release", "-p", "meshmon-dashboard", "--features", "tui", "--example", "tui_bench"],
                       cwd=ROOT, env=env, check=True)
    subprocess.run([f"{target}/release/examples/tui_bench"], check=True)
    exe = f"{target}/release/meshmon"
    demo = subprocess.Popen([exe, "demo", "--headless", "--nodes", str(a.nodes),
                             "--duration", f"{a.duration * 2 + 60}s"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        d = ""
        for line in demo.stdout:
            if "files in " in line:
                d = line.split("files in ", 1)[1].strip()
            if f"started demo-{a.nodes}" in line:
                break
        time.sleep(3)  # let the mesh converge so every host is up
        start = time.monotonic()
        tmux("new-session", "-d", "-s", "tui", "-x", "200", "-y", "60",
             f"exec {exe} tui --config {d}/demo-1.toml")
        want = f"{a.nodes} up"
        while want not in capture():
            if time.monotonic() - start > 20:
                sys.exit(f"no full frame within 20 s:\n{capture()}")
            time.sleep(0.005)
        first = (time.monotonic() - start) * 1000
        pid = int(tmux("list-panes", "-t", "tui", "-F", "#{pane_pid}").stdout.split()[0])
        time.sleep(5)
        fleet_cpu = cpu_pct(pid, a.duration)
        rss = status_kb(pid, "VmRSS") / 1024
        tmux("send-keys", "-t", "tui", "Enter")
        time.sleep(2)
        host_cpu = cpu_pct(pid, a.duration)
        hwm = status_kb(pid, "VmHWM") / 1024
        tmux("send-keys", "-t", "tui", "q")
        time.sleep(1)
        print(f"\nmeshmon tui (release) on a {a.nodes}-node demo mesh, tmux 200x60")
        print(f"{'measure':<48} {'value':>10}")
        print(f"{'tmux start to first full frame (all hosts up)':<48} {first:>7.0f} ms")
        print(f"{'RSS in the fleet view':<48} {rss:>7.1f} MB")
        print(f"{'peak RSS (VmHWM)':<48} {hwm:>7.1f} MB")
        print(f"{f'CPU idle, fleet view ({a.duration} s)':<48} {fleet_cpu:>7.2f} %")
        print(f"{f'CPU idle, host view ({a.duration} s)':<48} {host_cpu:>7.2f} %")
        print(f"{'quit on q':<48} {'yes' if tmux('has-session', '-t', 'tui').returncode else 'NO':>10}")
    finally:
        tmux("kill-server")
        demo.terminate()
        try:
            demo.wait(10)
        except subprocess.TimeoutExpired:
            demo.kill()


if __name__ == "__main__":
    main()
