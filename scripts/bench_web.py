#!/usr/bin/env python3
"""The web dashboard under a simulated fleet: one release `meshmon agent` in the dashboard role
with `[web]` on 127.0.0.1, fed by the meshmon-sim `fleet_sim` example (default 200 hosts, 3
series each, random walk, 1 s) through the real protocol, on a store that `seed_history` (the
real store writer) filled with 7 days of 1 s history for sim-0000 beforehand. Measures, as
medians of --repeat runs:

- the fleet API (`GET /api/v1/fleet`, what the fleet page loads) answer time;
- the first page fully drawn in headless Chromium: navigation start to the paint after the
  fleet table holds every host (the page's `meshmon:fleet-drawn` performance mark), each run
  in a fresh browser profile (cold cache), driven through chromedriver's WebDriver API;
- the host page's 7-day chart data: the `series ... since=7d` requests of sim-0000's charts
  (cpu, memory, disk), one by one and all three at once as the page sends them;
- the first-load weight of the page (HTML, scripts, styles, favicon) and the fleet JSON.

Prints one table. Everything listens on 127.0.0.1; everything it starts is stopped on every
exit path. Needs Debian's chromium and chromium-driver for the browser figure (else skipped).

Usage: scripts/bench_web.py [--hosts 200] [--repeat 20] [--no-build] [--debug]
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench_footprint import free_port  # same folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = ["app.js", "common.js", "host.js", "app.css", "uplot.min.js", "uplot.min.css", "favicon.svg"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"]


def get(url):
    """(seconds, body bytes) of one GET."""
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t, body


def wd(base, method, path, body=None):
    """One WebDriver command to chromedriver; returns its value."""
    data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]


def first_draw(driver_url, url, hosts, tmp, i):
    """ms from navigation start to the paint after the fleet table lists `hosts` rows, in a
    new chromium session with a fresh profile."""
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium", "args": CHROMIUM_ARGS + [f"--user-data-dir={tmp}/profile{i}"]}}}}
    sid = wd(driver_url, "POST", "/session", caps)["sessionId"]
    s = f"/session/{sid}"
    try:
        wd(driver_url, "POST", s + "/url", {"url": url})
        # The mark, and on the way: the page's HTML in, DOMContentLoaded (scripts run), the
        # fleet JSON in (ms from navigation start).
        script = ("const m = performance.getEntriesByName('meshmon:fleet-drawn')[0]; "
                  f"const n = document.querySelectorAll('#view tbody tr[data-host]').length; "
                  "const nav = performance.getEntriesByType('navigation')[0]; "
                  "const f = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/api/v1/fleet')); "
                  f"return m && n === {hosts} ? [m.startTime, nav.responseEnd, nav.domContentLoadedEventEnd, f ? f.responseEnd : 0] : null;")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            v = wd(driver_url, "POST", s + "/execute/sync", {"script": script, "args": []})
            if v is not None:
                errors = wd(driver_url, "POST", s + "/execute/sync",
                            {"script": "return window.__meshmonErrors;", "args": []})
                if errors:
                    raise SystemExit(f"page errors: {errors}")
                return v
            time.sleep(0.05)
        raise SystemExit("the fleet table was not drawn within 30 s")
    finally:
        wd(driver_url, "DELETE", s)


def end(procs):
    """SIGTERM to every process still running, SIGKILL to those not gone 3 s later."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        p.terminate()
    deadline = time.monotonic() + 3
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def med(v):
    return statistics.median(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--debug", action="store_true", help="debug builds (figures not comparable)")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target")
    profile = "debug" if a.debug else "release"
    if not a.no_build:
        subprocess.run(["cargo", "build", "-q"] + ([] if a.debug else ["--release"]) +
                       ["-p", "meshmon-agent", "--bin", "meshmon", "-p", "meshmon-sim", "--example", "fleet_sim",
                        "-p", "meshmon-dashboard", "--example", "seed_history"], cwd=ROOT, check=True)
    exe = f"{target}/{profile}/meshmon"
    sim = f"{target}/{profile}/examples/fleet_sim"
    seed = f"{target}/{profile}/examples/seed_history"
    tmp = tempfile.mkdtemp(prefix="meshmon-benchweb-")
    procs = []

    def stop(*_):
        end(procs)
        shutil.rmtree(tmp, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(1)))
    try:
        t = time.monotonic()
        subprocess.run([seed, "--db", f"{tmp}/dash.db", "--hosts", "sim-0000", "--days", "7"], check=True)
        print(f"seeded 7 days in {time.monotonic() - t:.0f} s", file=sys.stderr)
        port, web = free_port(), free_port()
        base = f"http://127.0.0.1:{web}"
        cfg = f"{tmp}/dash.toml"
        with open(cfg, "w") as f:
            f.write(f'[node]\nname = "dash"\nlisten = "127.0.0.1:{port}"\ndashboard = true\n'
                    f'[collect]\ninterval = "1s"\ndocker_dir = ""\nsmartctl = ""\n'
                    f'[store]\npath = "{tmp}/dash.db"\n[web]\nlisten = "127.0.0.1:{web}"\n')
        node = subprocess.Popen([exe, "agent", "--config", cfg], stdout=subprocess.DEVNULL,
                                stderr=open(f"{tmp}/dash.log", "w"))
        procs.append(node)
        time.sleep(1.0)
        fleet = subprocess.Popen([sim, "--target", f"127.0.0.1:{port}", "--hosts", str(a.hosts),
                                  "--pattern", "walk", "--report", "3600s"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(fleet)
        want = a.hosts + 1  # the simulated hosts and the node itself
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline:
            try:
                rows = json.loads(get(f"{base}/api/v1/fleet")[1])
            except OSError:
                rows = []
            if sum(r.get("status") == "up" for r in rows) >= want:
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"only {len(rows)} hosts in /api/v1/fleet after 60 s (see {tmp}/dash.log)")
        time.sleep(10)  # sparklines have some points; the store has flushed once

        fleet_s, fleet_bytes = [], 0
        for _ in range(a.repeat):
            s, body = get(f"{base}/api/v1/fleet")
            fleet_s.append(s)
            fleet_bytes = len(body)

        q = "since=7d"
        urls = [f"{base}/api/v1/series?host=sim-0000&metric={m}&all=1&{q}"
                for m in ("cpu.usage_pct", "mem.used_pct", "disk.used_pct")]
        one_s, points = [], 0
        for _ in range(a.repeat):
            s, body = get(urls[0])
            one_s.append(s)
            points = sum(len(x["points"]) for x in json.loads(body)["series"])
        page_s = []
        with ThreadPoolExecutor(len(urls)) as pool:
            for _ in range(a.repeat):
                t = time.perf_counter()
                list(pool.map(get, urls))
                page_s.append(time.perf_counter() - t)
        stats_s = [get(f"{base}/api/v1/stats?host=sim-0000&{q}")[0] for _ in range(a.repeat)]

        weight = len(get(f"{base}/")[1]) + sum(len(get(f"{base}/assets/{n}")[1]) for n in ASSETS)

        draw = []
        if os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver"):
            dport = free_port()
            drv = subprocess.Popen(["/usr/bin/chromedriver", f"--port={dport}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(drv)
            time.sleep(1.0)
            for i in range(min(a.repeat, 10)):
                draw.append(first_draw(f"http://127.0.0.1:{dport}", f"{base}/#/fleet", want, tmp, i))
            parts = [med([d[k] for d in draw]) for k in range(4)]
            draw = [d[0] for d in draw]
        else:
            print("chromium/chromedriver not installed: the first-draw figure is skipped", file=sys.stderr)

        ms = lambda v: f"{med(v) * 1000:.1f}"
        load = os.getloadavg()[0]
        print(f"\nload average at the end: {load:.1f} on {os.cpu_count()} CPUs")
        print(f"\n{a.hosts} simulated hosts (3 series, 1 s, walk) into one {profile} dashboard node with [web]; "
              f"7 days of 1 s history for sim-0000; medians of {a.repeat} requests\n")
        print("| figure | median | max | target |")
        print("|---|---:|---:|---|")
        print(f"| fleet API `/api/v1/fleet` ({want} rows, {fleet_bytes / 1024:.0f} KiB) | {ms(fleet_s)} ms "
              f"| {max(fleet_s) * 1000:.1f} ms | <= 50 ms |")
        if draw:
            print(f"| first page fully drawn in headless Chromium ({want} rows, cold cache, {len(draw)} runs) "
                  f"| {med(draw):.0f} ms | {max(draw):.0f} ms | <= 1000 ms |")
        print(f"| 7-day chart data, cpu.usage_pct ({points} points) | {ms(one_s)} ms | {max(one_s) * 1000:.1f} ms | <= 100 ms |")
        print(f"| 7-day chart data, the page's 3 charts in parallel | {ms(page_s)} ms | {max(page_s) * 1000:.1f} ms | <= 100 ms |")
        print(f"| 7-day stats table `/api/v1/stats` | {ms(stats_s)} ms | {max(stats_s) * 1000:.1f} ms | - |")
        if draw:
            print(f"| ... of which: HTML in / scripts run (DOMContentLoaded) / fleet JSON in | "
                  f"{parts[1]:.0f} / {parts[2]:.0f} / {parts[3]:.0f} ms | | - |")
        print(f"| first-load weight (HTML, JS, CSS, icon; uncompressed) | {weight / 1024:.0f} KiB | | <= 300 KB |")
    finally:
        stop()


if __name__ == "__main__":
    main()
