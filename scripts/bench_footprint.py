#!/usr/bin/env python3
"""Agent footprint next to node_exporter, measured in the same run.

Starts two release `meshmon agent`s linked on 127.0.0.1 (the full core collector set at the
1 s interval) and Debian's prometheus-node-exporter on 127.0.0.1, scraped once a second, then
samples both processes for DURATION seconds (default 60): CPU from /proc/PID/stat
(utime+stime) and RSS from /proc/PID/status. Prints one table. Everything it starts is
stopped on every exit path.

With --netdata it also installs Debian's netdata if missing, starts it in a process group of
its own with a temporary config (web on 127.0.0.1:<free port>, registry, cloud and
anonymous statistics off, its own cache/lib/log dirs; collection left at its default 1 s),
and sums RSS and CPU over every process of that group (netdata, its spawn server and its
plugins) over the same window. If it cannot be started, its column says why.

A third agent, the plain build (`cargo build --release --no-default-features`, into
target/plain), joins the same mesh as agent C (dialling B), so the table has the plain agent
and the default binary as a non-dashboard agent side by side; the sizes of both binaries are
printed too.

Usage: scripts/bench_footprint.py [--duration 60] [--no-build] [--netdata]
"""
import argparse, glob, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

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


def sched_ns(pid):
    """CPU time of every thread of `pid` alive now, in ns (first field of each schedstat):
    finer than utime+stime's 10 ms ticks; threads that already ended are not counted."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between listing and reading
    return total


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def group_pids(pgid):
    """Every live process whose process group is `pgid` (netdata and the plugins it spawns)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d))
    return out


def group_ticks(pgid, seen):
    """CPU ticks of the group; `seen` keeps the last value of processes that have exited."""
    for pid in group_pids(pgid):
        try:
            seen[pid] = cpu_ticks(pid)
        except OSError:
            pass
    return sum(seen.values())


def group_rss_kb(pgid):
    total = 0
    for pid in group_pids(pgid):
        try:
            total += rss_kb(pid)
        except OSError:
            pass
    return total


def start_netdata(tmp):
    """Starts netdata on loopback; returns (Popen, port) or raises RuntimeError(why)."""
    nd = shutil.which("netdata") or ("/usr/sbin/netdata" if os.path.exists("/usr/sbin/netdata") else None)
    if nd is None:
        print("installing netdata (Debian) ...", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        r = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "netdata"], timeout=300,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        nd = shutil.which("netdata") or ("/usr/sbin/netdata" if os.path.exists("/usr/sbin/netdata") else None)
        if r.returncode != 0 or nd is None:
            raise RuntimeError("apt-get install netdata failed")
    d = f"{tmp}/netdata"
    for sub in ("etc", "cache", "lib", "log"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    os.chmod(tmp, 0o755)
    user = "root"
    if os.geteuid() == 0:
        try:
            import pwd
            pw = pwd.getpwnam("netdata")
            user = "netdata"
            for sub in ("cache", "lib", "log"):
                os.chown(f"{d}/{sub}", pw.pw_uid, pw.pw_gid)
        except KeyError:
            pass
    port = free_port()
    with open(f"{d}/netdata.conf", "w") as f:
        f.write(f"""[global]
	hostname = netdata-bench
	run as user = {user}
[directories]
	config = {d}/etc
	stock config = /usr/lib/netdata/conf.d
	cache = {d}/cache
	lib = {d}/lib
	log = {d}/log
	home = {d}/lib
	plugins = /usr/lib/netdata/plugins.d
	web = /usr/share/netdata/web
[logs]
	debug = {d}/log/debug.log
	error = {d}/log/error.log
	access = none
[web]
	bind to = 127.0.0.1:{port}
[registry]
	enabled = no
[statsd]
	bind to = udp:127.0.0.1:{free_port()} tcp:127.0.0.1:{free_port()}
""")
    with open(f"{d}/etc/cloud.conf", "w") as f:
        f.write("[global]\n\tenabled = no\n")
    p = subprocess.Popen([nd, "-D", "-c", f"{d}/netdata.conf", "-P", f"{d}/netdata.pid"], cwd=d,
                         env=dict(os.environ, DO_NOT_TRACK="1"), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"netdata exited with {p.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/info", timeout=2) as r:
                r.read()
            return p, port
        except OSError:
            time.sleep(0.5)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    p.wait()
    raise RuntimeError("netdata did not answer on its web port within 30 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--netdata", action="store_true", help="also measure Debian's netdata (same window)")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshmon-agent", "--no-default-features",
                        "--target-dir", os.path.join(ROOT, "target", "plain")], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "meshmon")
    plain_exe = os.path.join(ROOT, "target", "plain", "release", "meshmon")
    ne = shutil.which("prometheus-node-exporter")
    if ne is None:
        print("installing prometheus-node-exporter (Debian) ...", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "prometheus-node-exporter"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        ne = shutil.which("prometheus-node-exporter")
    tmp = tempfile.mkdtemp(prefix="meshmon-bench-")
    procs = []
    groups = []  # process groups to kill (netdata and its plugins)

    def stop(*_):
        for g in groups:
            try:
                os.killpg(g.pid, signal.SIGTERM)
            except OSError:
                pass
        for g in groups:
            try:
                g.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(g.pid, signal.SIGKILL)
            except OSError:
                pass
            if g.poll() is None:
                g.wait()
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
        pa, pb, pc, pn = free_port(), free_port(), free_port(), free_port()
        for name, port, nb, bin_ in [("bench-a", pa, f'"127.0.0.1:{pb}"', exe), ("bench-b", pb, "", exe),
                                     ("bench-c", pc, f'"127.0.0.1:{pb}"', plain_exe)]:
            with open(f"{tmp}/{name}.toml", "w") as f:
                f.write(f'[node]\nname = "{name}"\nlisten = "127.0.0.1:{port}"\nneighbours = [{nb}]\n'
                        f'[collect]\ninterval = "1s"\ndocker_dir = ""\nsmartctl = ""\n')
            procs.append(subprocess.Popen([bin_, "agent", "--config", f"{tmp}/{name}.toml"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        agent, plain = procs[0], procs[2]
        nexp = subprocess.Popen([ne, f"--web.listen-address=127.0.0.1:{pn}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nexp)
        ndp, nd_why = None, ""
        if args.netdata:
            try:
                ndp, _ = start_netdata(tmp)
                groups.append(ndp)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                nd_why = str(e)
                print(f"netdata not measured: {nd_why}", file=sys.stderr)
        time.sleep(10 if ndp else 5)  # warm up: first scrape, first frames, link up
        url = f"http://127.0.0.1:{pn}/metrics"
        start = time.monotonic()
        c0 = {p.pid: cpu_ticks(p.pid) for p in (agent, plain, nexp)}
        rss = {agent.pid: [], plain.pid: [], nexp.pid: []}
        nd_seen, nd_rss = {}, []
        nd_c0 = group_ticks(ndp.pid, nd_seen) if ndp else 0
        scrape_bytes = 0
        while time.monotonic() - start < args.duration:
            t = time.monotonic()
            with urllib.request.urlopen(url, timeout=5) as r:
                scrape_bytes += len(r.read())
            for p in (agent, plain, nexp):
                rss[p.pid].append(rss_kb(p.pid))
            if ndp:
                nd_rss.append(group_rss_kb(ndp.pid))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        elapsed = time.monotonic() - start
        cpu = {pid: (cpu_ticks(pid) - c0[pid]) / TICK / elapsed * 100 for pid in c0}
        nd_cpu = (group_ticks(ndp.pid, nd_seen) - nd_c0) / TICK / elapsed * 100 if ndp else 0
        nd_procs = len(group_pids(ndp.pid)) if ndp else 0
        if ndp and ndp.poll() is not None:
            ndp, nd_why = None, "netdata exited during the run"
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"process {p.args[0]} exited during the run")

        nd_col = args.netdata

        def row(fig, a, n, target, fmt, nd=None):
            ratio = f"{a / n:.2f}x" if n else "-"
            line = f"| {fig:<22} | {fmt.format(a):>12} | {fmt.format(n):>14} | {target:>10} | {ratio:>7} |"
            if nd_col:
                if ndp is None:
                    line += f" {'not measured: ' + nd_why:>14} | {'-':>8} |"
                else:
                    line += f" {fmt.format(nd):>14} | {(f'{a / nd:.2f}x' if nd else '-'):>8} |"
            print(line)

        print(f"\nfootprint over {elapsed:.0f} s at a 1 s interval, same run (meshmon: agent A of a 3-node mesh, "
              f"default build, not a dashboard; plain: agent C, the --no-default-features build; "
              f"node_exporter {ne}: scraped every second, {scrape_bytes / elapsed / 1024:.0f} KiB/s)\n")
        if nd_col and ndp:
            print(f"netdata: default 1 s collection, RSS and CPU summed over its process group "
                  f"({nd_procs} processes at the end: netdata, spawn server, plugins)\n")
        hdr = f"| {'figure':<22} | {'meshmon':>12} | {'node_exporter':>14} | {'target':>10} | {'ratio':>7} |"
        sep = f"|{'-' * 24}|{'-' * 14}|{'-' * 16}|{'-' * 12}|{'-' * 9}|"
        if nd_col:
            hdr += f" {'netdata':>14} | {'ratio_nd':>8} |"
            sep += f"{'-' * 16}|{'-' * 10}|"
        print(hdr)
        print(sep)
        ndr = nd_rss or [0]
        row("RSS median (MB)", statistics.median(rss[agent.pid]) / 1024, statistics.median(rss[nexp.pid]) / 1024, "<= 7", "{:.1f}",
            statistics.median(ndr) / 1024)
        row("RSS max (MB)", max(rss[agent.pid]) / 1024, max(rss[nexp.pid]) / 1024, "", "{:.1f}", max(ndr) / 1024)
        row("CPU (% of one core)", cpu[agent.pid], cpu[nexp.pid], "<= 0.2", "{:.2f}", nd_cpu)
        row("plain RSS median (MB)", statistics.median(rss[plain.pid]) / 1024, statistics.median(rss[nexp.pid]) / 1024,
            "<= 5", "{:.1f}", statistics.median(ndr) / 1024)
        row("plain RSS max (MB)", max(rss[plain.pid]) / 1024, max(rss[nexp.pid]) / 1024, "", "{:.1f}", max(ndr) / 1024)
        row("plain CPU (% of core)", cpu[plain.pid], cpu[nexp.pid], "<= 0.2", "{:.2f}", nd_cpu)
        row("binary size (MB)", os.path.getsize(exe) / 1e6, os.path.getsize(ne) / 1e6, "", "{:.1f}",
            0.0)
        row("plain binary size (MB)", os.path.getsize(plain_exe) / 1e6, os.path.getsize(ne) / 1e6, "", "{:.1f}",
            0.0)
    finally:
        stop()


if __name__ == "__main__":
    main()
