#!/usr/bin/env python3
"""What the issue-16 collectors cost: agent CPU and RSS with them on and off, same run as
node_exporter.

Starts 300 extra processes (`sleep`) and --containers real Podman containers (default 20;
as scripts/bench_containers.sh: 2 busy capped at 0.2 CPU, 1 writing a file every second, the
rest idle; needs root, podman, runc, busybox-static; 0 skips them), then two release `meshmon
agent`s on 127.0.0.1 (not linked, neither a dashboard, core collectors at 1 s, Docker size and
SMART off in both): ON with the issue-16 collectors (`collect.top_processes = 10`,
`collect.processes = ["sshd", "sleep", "nginx"]`, containers through the Podman socket this
script starts, disk I/O; pressure, OOM and network errors are part of the core set and on in
both) and OFF with them off (`top_processes = 0`, `processes = []`, `containers = false`,
`disk_io = false`). In the same window Debian's `prometheus-node-exporter` runs on
127.0.0.1, scraped once a second by this script (installed with apt-get when missing).

Every WINDOW seconds (default 10) over DURATION (default 60) it reads each process's CPU time
(utime+stime of /proc/PID/stat) and RSS (/proc/PID/status); the table gives the median, min
and max over the windows of CPU in % of one core, and of RSS in MB. Everything it starts is
stopped on every exit path.

Usage: scripts/bench_collectors.py [--duration 60] [--window 10] [--containers 20] [--no-build]
                                   [--exe PATH]
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

# The process readings every footprint benchmark takes (this directory is on sys.path).
from bench_footprint import cpu_ticks, free_port, rss_kb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
TARGET_CPU = 0.3  # % of one core, agent with the new collectors on


def node_exporter():
    ne = shutil.which("prometheus-node-exporter")
    if ne is None:
        print("installing prometheus-node-exporter (Debian) ...", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "prometheus-node-exporter"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)
        ne = shutil.which("prometheus-node-exporter")
    if ne is None:
        raise SystemExit("prometheus-node-exporter is not installed and apt-get did not install it")
    return ne


def containers_running():
    """Containers this machine runs now (podman or docker), or a reason there are none."""
    for tool in ("podman", "docker"):
        if shutil.which(tool):
            try:
                r = subprocess.run([tool, "ps", "-q"], capture_output=True, text=True, timeout=20)
                if r.returncode == 0:
                    return len(r.stdout.split()), tool
            except (OSError, subprocess.SubprocessError):
                pass
    return 0, "no podman or docker answering"


def start_containers(n, tmp):
    """A Podman API socket and n containers from a busybox rootfs; returns (socket path,
    cleanup). The same set as scripts/bench_containers.sh."""
    prefix = f"meshmon-benchcoll-{os.getpid()}"
    env = dict(os.environ, CONTAINERS_CONF=f"{tmp}/containers.conf")
    with open(env["CONTAINERS_CONF"], "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                '[engine]\nruntime = "runc"\n')
    rootfs = f"{tmp}/rootfs"
    os.makedirs(f"{rootfs}/bin")
    shutil.copy("/bin/busybox", f"{rootfs}/bin/busybox")
    for link in ("sh", "sleep", "true"):
        os.symlink("busybox", f"{rootfs}/bin/{link}")
    subprocess.run(["tar", "-C", rootfs, "-cf", f"{tmp}/rootfs.tar", "."], check=True)
    img = "localhost/meshmon-test-busybox:latest"
    subprocess.run(["podman", "import", "-q", f"{tmp}/rootfs.tar", img], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    sock = f"{tmp}/podman.sock"
    svc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cleanup():
        names = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"], env=env,
                               capture_output=True, text=True).stdout.split()
        mine = [x for x in names if x.startswith(prefix + "-")]
        if mine:
            subprocess.run(["podman", "rm", "-f", "-t", "0", *mine], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if svc.poll() is None:
            svc.terminate()
            svc.wait()

    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        for i in range(1, n + 1):
            run = ["podman", "run", "-d", "-q", "--name", f"{prefix}-{i:02d}"]
            if i <= 2:
                run += ["--cpus", "0.2", img, "sh", "-c", "while :; do :; done"]
            elif i == 3:
                run += [img, "sh", "-c", "while :; do echo x >> /f; sleep 1; done"]
            else:
                run += [img, "sleep", "100000"]
            subprocess.run(run, check=True, env=env, stdout=subprocess.DEVNULL)
    except BaseException:
        cleanup()
        raise
    return sock, cleanup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--exe", help="meshmon binary (default: the release build of this checkout)")
    args = ap.parse_args()
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = args.exe or os.path.join(target_dir, "release", "meshmon")
    if not args.no_build and not args.exe:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent", "--bin", "meshmon"],
                       cwd=ROOT, check=True)
    ne = node_exporter()
    tmp = tempfile.mkdtemp(prefix="meshmon-bench-collectors-")
    procs, sleepers, cleanups = [], [], []

    def stop(*_):
        for c in cleanups:
            c()
        for p in procs + sleepers:
            if p.poll() is None:
                p.terminate()
        for p in procs + sleepers:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(1)))
    try:
        for _ in range(300):
            sleepers.append(subprocess.Popen(["sleep", "3600"], stdout=subprocess.DEVNULL))
        sockets = "[]"
        if args.containers > 0:
            sock, cleanup = start_containers(args.containers, tmp)
            cleanups.append(cleanup)
            sockets = f'["{sock}"]'
        common = 'interval = "1s"\ndocker_dir = ""\nsmartctl = ""\n'
        on = common + ('top_processes = 10\nprocesses = ["sshd", "sleep", "nginx"]\n'
                       f'containers = true\ncontainer_sockets = {sockets}\ndisk_io = true\n')
        off = common + 'top_processes = 0\nprocesses = []\ncontainers = false\ndisk_io = false\n'
        agents = {}
        for name, collect in (("on", on), ("off", off)):
            path = f"{tmp}/{name}.toml"
            with open(path, "w") as f:
                f.write(f'[node]\nname = "bench-{name}"\nlisten = "127.0.0.1:{free_port()}"\n[collect]\n{collect}')
            p = subprocess.Popen([exe, "agent", "--config", path], stdout=subprocess.DEVNULL,
                                 stderr=open(f"{tmp}/{name}.log", "w"))
            procs.append(p)
            agents[name] = p
        pn = free_port()
        nexp = subprocess.Popen([ne, f"--web.listen-address=127.0.0.1:{pn}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nexp)
        who = {"meshmon, new collectors on": agents["on"], "meshmon, new collectors off": agents["off"],
               "node_exporter (1 s scrape)": nexp}
        time.sleep(5)  # warm up: first readings, first scrape
        url = f"http://127.0.0.1:{pn}/metrics"
        cpu = {k: [] for k in who}
        rss = {k: [] for k in who}
        last = {k: (cpu_ticks(p.pid), time.monotonic()) for k, p in who.items()}
        start = time.monotonic()
        next_window = start + args.window
        nprocs = 0
        while time.monotonic() - start < args.duration:
            t = time.monotonic()
            with urllib.request.urlopen(url, timeout=5) as r:
                r.read()
            for k, p in who.items():
                rss[k].append(rss_kb(p.pid) / 1024)
            if t >= next_window:
                for k, p in who.items():
                    ticks, then = cpu_ticks(p.pid), time.monotonic()
                    cpu[k].append((ticks - last[k][0]) / TICK / (then - last[k][1]) * 100)
                    last[k] = (ticks, then)
                next_window += args.window
                nprocs = sum(1 for d in os.listdir("/proc") if d.isdigit())
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"{p.args[0]} exited during the run (logs in {tmp})")
        n_cont, cont_how = containers_running()

        print(f"\ncollector cost over {args.duration} s in {args.window} s windows, same run; "
              f"{nprocs} processes on the machine (300 extra `sleep`s); containers: {n_cont} ({cont_how}); "
              f"{os.cpu_count()} CPUs\n")
        print(f"| {'figure':<44} | {'median':>7} | {'min':>7} | {'max':>7} | {'target':>7} |")
        print(f"|{'-' * 46}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
        for k in who:
            target = f"<= {TARGET_CPU}" if k.endswith("on") else ""
            c = cpu[k]
            print(f"| {k + ': CPU % of one core':<44} | {statistics.median(c):>7.2f} | {min(c):>7.2f} | "
                  f"{max(c):>7.2f} | {target:>7} |")
        for k in who:
            r = rss[k]
            print(f"| {k + ': RSS MB':<44} | {statistics.median(r):>7.1f} | {min(r):>7.1f} | "
                  f"{max(r):>7.1f} | {'':>7} |")
        added = statistics.median(cpu["meshmon, new collectors on"]) - statistics.median(
            cpu["meshmon, new collectors off"])
        print(f"\nadded by the new collectors (median on - median off): {added:.2f} % of one core")
    finally:
        stop()


if __name__ == "__main__":
    main()
