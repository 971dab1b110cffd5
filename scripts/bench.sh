#!/usr/bin/env bash
# One benchmark harness for the whole system. Builds the release binary and the benchmark
# examples once, runs every per-area benchmark (footprint next to node_exporter and Netdata,
# the 8-node line, the 50-node mesh, the store, the TUI, alert latency, the Docker walk, a
# dashboard under 500 simulated hosts, and in full runs the receive path: CPU per received
# frame under 200 and 1,000 simulated hosts), keeps each one's own table under
# $BENCH_OUT (default: a temp dir, printed), and prints ONE combined Markdown table:
#   | figure | median | min | max | target | ratio/note |
# Single-run figures have their value in `median` and '-' in min/max.
#
#   scripts/bench.sh            full run (about 15 minutes on a 2-core VM once built)
#   scripts/bench.sh --quick    about 2.5 minutes: shorter windows and a subset, see below
#
# --quick: footprint over 20 s (Netdata included), bench_mesh.sh --quick --only 4 (bytes/s
# per host per link; the latency figure needs minutes), a 20-node mesh with 10 s windows,
# bench_store --quick --repeat 1, the TUI with 5 s idle windows.
#
# Installs prometheus-node-exporter and netdata from Debian if missing (needs root or sudo);
# everything listens on 127.0.0.1 only. Each sub-benchmark stops what it started on every exit
# path; this script also runs each one in a process group of its own and kills that group on
# exit, error, Ctrl-C or TERM.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
out="${BENCH_OUT:-$(mktemp -d /tmp/meshmon-bench.XXXXXX)}"
mkdir -p "$out"
start=$(date +%s)

pgid=""
cleanup() {
  if [ -n "$pgid" ]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    sleep 0.5
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: building (release) once" >&2
cargo build --release --quiet -p meshmon-agent --bin meshmon --example bench_mesh -p meshmon-sim --example fleet_sim
cargo build --release --quiet -p meshmon-dashboard --features tui --example bench_store --example tui_bench
# The plain agent (no dashboard, TUI, exporter, self-update, GPU, checks), for the footprint.
cargo build --release --quiet -p meshmon-agent --no-default-features --target-dir target/plain

# run NAME CMD...: runs CMD in its own process group, stdout to $out/NAME.txt, bounded in time.
run() {
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  echo "bench: $name ..." >&2
  setsid timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$out/$name.txt" 2>"$out/$name.err" &
  pgid=$!
  local rc=0
  wait "$pgid" || rc=$?
  pgid=""
  echo "$rc $(( $(date +%s) - t0 ))" >"$out/$name.rc"
  echo "bench: $name done (rc $rc, $(( $(date +%s) - t0 )) s)" >&2
}

if [ $quick = 1 ]; then
  run footprint 60 python3 scripts/bench_footprint.py --duration 20 --no-build --netdata
  run mesh 60 scripts/bench_mesh.sh --quick --only 4
  run mesh50 100 python3 scripts/bench_mesh50.py --quick --no-build
  run store 60 scripts/bench_store.sh --quick --repeat 1
  run tui 60 python3 scripts/bench_tui.py --duration 5 --no-build
  run alert 90 python3 scripts/bench_alert.py --rounds 3 --no-build
  run docker 120 scripts/bench_docker.sh --files 50000 --runs 3
  run dashboard 150 python3 scripts/bench_dashboard.py --duration 20 --no-build
else
  run footprint 150 python3 scripts/bench_footprint.py --duration 60 --no-build --netdata
  run mesh 330 scripts/bench_mesh.sh
  run mesh50 300 python3 scripts/bench_mesh50.py --no-build
  run store 240 scripts/bench_store.sh
  run tui 120 python3 scripts/bench_tui.py --duration 30 --no-build
  run alert 200 python3 scripts/bench_alert.py --rounds 10 --no-build
  run docker 300 scripts/bench_docker.sh
  run dashboard 250 python3 scripts/bench_dashboard.py --duration 60 --no-build
  run rx 600 python3 scripts/bench_rx.py --no-build --hosts 200,1000 --repeats 3 --window 30 --warmup 15
fi

python3 - "$out" "$quick" "$(( $(date +%s) - start ))" <<'EOF'
import re, sys
out, quick, took = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
rows = []

def text(name):
    try:
        return open(f"{out}/{name}.txt").read()
    except OSError:
        return ""

def status(name):
    try:
        rc, secs = open(f"{out}/{name}.rc").read().split()
        return int(rc), int(secs)
    except (OSError, ValueError):
        return None, 0

def add(fig, med, lo="-", hi="-", target="-", note=""):
    rows.append((fig, med, lo, hi, target or "-", note or ""))

def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]

def failed(name, what):
    rc, secs = status(name)
    if rc != 0:
        err = ""
        try:
            err = open(f"{out}/{name}.err").read().strip().splitlines()[-1][:120]
        except (OSError, IndexError):
            pass
        add(f"{what}: NOT MEASURED", "-", note=f"exit {rc} after {secs} s: {err}" + (" (time limit)" if rc == 124 else ""))

# footprint: | figure | meshmon | node_exporter | target | ratio | [netdata | ratio_nd |]
for line in text("footprint").splitlines():
    c = cells(line)
    if line.startswith("|") and len(c) >= 5 and c[0] not in ("figure",) and not c[0].startswith("-"):
        note = f"node_exporter {c[2]} (meshmon/ne {c[4]})"
        if len(c) >= 7:
            note += f"; netdata {c[5]}" + (f" (meshmon/nd {c[6]})" if c[6] != "-" else "")
        add(f"agent footprint: {c[0]}", c[1], target=c[3], note=note)
failed("footprint", "agent footprint")

# bench_mesh.sh and bench_mesh50.py: | figure | median | min | max | target | note |
for name in ("mesh", "mesh50"):
    for line in text(name).splitlines():
        c = cells(line)
        if line.startswith("|") and len(c) == 6 and c[0] != "figure" and not c[0].startswith("-"):
            add(*c)
    failed(name, "8-node line (bench_mesh)" if name == "mesh" else "mesh of real agents (bench_mesh50)")

# store: plain table "figure   measured   target"
t = text("store").splitlines()
if any(l.startswith("figure") for l in t):
    for line in t[[i for i, l in enumerate(t) if l.startswith("figure")][0] + 1:]:
        m = re.match(r"^(.+?)\s{2,}(\S+)(?:\s{2,}(.*))?$", line.rstrip())
        if m:
            add(f"store: {m.group(1).strip()}", m.group(2), target=(m.group(3) or "-").strip())
failed("store", "store")

# tui: two plain tables "measure   value"
for line in text("tui").splitlines():
    if line.startswith("measure") or not line.strip() or line.startswith("meshmon"):
        continue
    m = re.match(r"^(.+?)\s{2,}(\S.*)$", line.rstrip())
    if m:
        add(f"tui: {m.group(1).strip()}", m.group(2).strip())
failed("tui", "tui")

# alert: "rule for sample->POST-med max write->POST-med max"
for line in text("alert").splitlines():
    c = line.split()
    if len(c) == 6 and c[0].startswith("hold"):
        add(f"alert: threshold crossing (sample) to webhook POST, minus for={c[1]}s", f"{float(c[2])*1000:.0f} ms",
            hi=f"{float(c[3])*1000:.0f} ms", target="<= 1000 ms",
            note=f"from writing a textfile value: {float(c[4])*1000:.0f} ms median (sampling delay of the 1 s interval included)")
failed("alert", "alert latency")

# docker: "meshmon walk (nice 19)   wall   cpu" and "du -sbx   wall   cpu"
d = {}
files = ""
for line in text("docker").splitlines():
    m = re.match(r"^(meshmon walk \(nice 19\)|du -sbx)\s+(\S+)\s+(\S+)$", line.strip())
    if m:
        d[m.group(1)] = (m.group(2), m.group(3))
    if line.startswith("tree:"):
        files = line.split()[1]
if "du -sbx" in d and len(d) == 2:
    w, u = d["meshmon walk (nice 19)"], d["du -sbx"]
    add(f"docker_dir walk of {files} files: wall s / CPU s", f"{w[0]} / {w[1]}", target="-",
        note=f"du -sbx {u[0]} / {u[1]} on the same tree (same total)")
failed("docker", "docker directory size")

# dashboard: | node | RSS median (MB) | RSS max (MB) | CPU (%) | CPU per host-frame (us) | target |
for line in text("dashboard").splitlines():
    c = cells(line)
    if line.startswith("|") and len(c) >= 6 and c[0] in ("dashboard", "not a dashboard"):
        add(f"{c[0]} node, 500 simulated hosts: RSS median MB / CPU % / us per host-frame",
            f"{c[1]} / {c[3]} / {c[4]}", target=c[5])
failed("dashboard", "dashboard under a simulated fleet")

# rx (full runs only): | binary | node | N | frames/s | CPU % | idle CPU % | us/frame utime+stime (min-max) | us/frame schedstat (min-max) | net |
for line in text("rx").splitlines():
    c = cells(line)
    if line.startswith("|") and len(c) >= 9 and c[2].isdigit():
        m = re.match(r"([\d.]+) \(([\d.]+)-([\d.]+)\)", c[7])
        if m:
            add(f"receive path: CPU us per received frame, {c[1]}, {c[2]} hosts at 1 s (schedstat)",
                m.group(1), m.group(2), m.group(3), target="<= 15",
                note=f"n=3; {c[4]} % of a core; utime+stime {c[6]}; net of the idle node {c[8]}")
if not quick:
    failed("rx", "receive path")

print(f"\nmeshmon benchmarks ({'--quick' if quick else 'full'} run, {took} s in all"
      + "; ".join([""] + [f"{n} {status(n)[1]} s" for n in ("footprint", "mesh", "mesh50", "store", "tui", "alert", "docker", "dashboard", "rx")])
      + f"; raw tables in {out})\n")
print("| figure | median | min | max | target | ratio/note |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
EOF
