#!/usr/bin/env bash
# Soak benchmark (not CI): a 5-node mesh of release agents on 127.0.0.1 (a ring with a chord,
# node n1 in the dashboard role, keyed), plus 200 simulated hosts (the meshmon-sim fleet_sim
# example, flapping cpu.usage_pct) sending every second into node n3, for 10 minutes. Prints
# each process's RSS at minute 2 and at the end, and the growth, as a Markdown table on
# stdout; progress and the fleet's counters go to stderr.
#
#   scripts/bench_soak.sh                    10 minutes
#   scripts/bench_soak.sh --minutes 3        shorter (the first reading is taken at minute 2,
#                                            or half-way through runs of 2 minutes or less)
#   scripts/bench_soak.sh --hosts 500        more simulated hosts
#
# Exit status: 0 when every process lived to the end, 1 when one died, 2 on bad arguments.
# Every process it starts is stopped (TERM, then KILL) and its temporary directory removed on
# every exit path (normal end, error, Ctrl-C, TERM).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

minutes=10
hosts=200
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:-}"; shift 2 ;;
    --hosts) hosts="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench_soak: unknown argument '$1' (expected --minutes N, --hosts N)" >&2; exit 2 ;;
  esac
done
case "$minutes" in ''|*[!0-9]*|0) echo "bench_soak: --minutes: '$minutes' is not a whole number of minutes >= 1" >&2; exit 2 ;; esac
case "$hosts" in ''|*[!0-9]*|0) echo "bench_soak: --hosts: '$hosts' is not a number >= 1" >&2; exit 2 ;; esac

echo "bench_soak: building (release)" >&2
cargo build --release --quiet -p meshmon-agent --bin meshmon -p meshmon-sim --example fleet_sim
B="$CARGO_TARGET_DIR/release/meshmon"
SIM="$CARGO_TARGET_DIR/release/examples/fleet_sim"

dir="$(mktemp -d -t meshmon-soak.XXXXXX)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.3
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Five free ports on 127.0.0.1 (bound, then released).
read -r -a ports <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')"

"$B" keygen --out "$dir/mesh.key" >/dev/null 2>&1
# Ring n1 -> n2 -> n3 -> n4 -> n5 -> n1, chord n1 -> n3; n1 is the dashboard.
names=(n1 n2 n3 n4 n5)
neighbours=("${ports[1]}" "${ports[2]}" "${ports[3]}" "${ports[4]}" "${ports[0]}")
for i in 0 1 2 3 4; do
  n="${names[$i]}"
  peers="\"127.0.0.1:${neighbours[$i]}\""
  extra=""
  if [ "$i" = 0 ]; then
    peers="$peers, \"127.0.0.1:${ports[2]}\""
    extra="dashboard = true
[store]
path = \"$dir/store.db\"
"
  fi
  cat >"$dir/$n.toml" <<EOF
[node]
name = "$n"
listen = "127.0.0.1:${ports[$i]}"
neighbours = [$peers]
key_file = "$dir/mesh.key"
$extra
EOF
  MESHMON_LOG=warn NO_COLOR=1 "$B" agent --config "$dir/$n.toml" 2>"$dir/$n.log" &
  pids+=("$!")
done
sleep 2
"$SIM" --target "127.0.0.1:${ports[2]}" --hosts "$hosts" --interval 1s --pattern flap \
  --key "$dir/mesh.key" --report 60s >"$dir/fleet.log" 2>&1 &
pids+=("$!")
labels=("n1 (dashboard)" "n2" "n3 (fleet's target)" "n4" "n5" "fleet_sim ($hosts hosts)")
echo "bench_soak: 5 nodes on ports ${ports[*]}, $hosts simulated hosts into n3, $minutes min; files in $dir" >&2

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
alive_all() {
  local p
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
}

total=$((minutes * 60))
first=120
[ "$total" -le 120 ] && first=$((total / 2))
start=$(date +%s)
last_minute=0
wait_until() {
  while [ $(( $(date +%s) - start )) -lt "$1" ]; do
    sleep 1
    if ! alive_all; then return 1; fi
    local m=$(( ($(date +%s) - start) / 60 ))
    if [ "$m" -gt "$last_minute" ]; then
      last_minute=$m
      echo "bench_soak: $m min" >&2
    fi
  done
}

died=0
wait_until "$first" || died=1
first_rss=()
for p in "${pids[@]}"; do first_rss+=("$(rss_kb "$p")"); done
[ "$died" = 0 ] && { wait_until "$total" || died=1; }
end_rss=()
for p in "${pids[@]}"; do end_rss+=("$(rss_kb "$p")"); done
elapsed=$(( $(date +%s) - start ))

seen="$("$B" query hosts --config "$dir/n1.toml" --format csv 2>/dev/null | tail -n +2 | wc -l || echo '?')"
up="$("$B" query hosts --config "$dir/n1.toml" --format csv 2>/dev/null | grep -c ',up,' || true)"

echo
echo "Soak: 5-node mesh + $hosts simulated hosts (1 s, flapping cpu) into n3, $((elapsed / 60)) min $((elapsed % 60)) s; n1's store lists $seen hosts, $up up at the end."
echo
echo "| process | RSS at $((first / 60)) min $((first % 60)) s (MB) | RSS at end (MB) | growth (MB) | growth (%) |"
echo "|---|---:|---:|---:|---:|"
for i in "${!pids[@]}"; do
  a="${first_rss[$i]:-0}"; b="${end_rss[$i]:-0}"
  awk -v l="${labels[$i]}" -v a="$a" -v b="$b" 'BEGIN {
    pct = (a > 0) ? sprintf("%+.1f", (b - a) * 100 / a) : "-";
    if (b == 0) { printf "| %s | %.1f | DIED | - | - |\n", l, a / 1024 }
    else { printf "| %s | %.1f | %.1f | %+.1f | %s |\n", l, a / 1024, b / 1024, (b - a) / 1024, pct }
  }'
done
echo
echo "fleet_sim keeps each simulated host's frames for 5 minutes (to answer backfill): its RSS grows until then."
echo
echo "fleet_sim's last counters: $(grep -E '\[' "$dir/fleet.log" | tail -1)" >&2
for n in "${names[@]}"; do
  w="$(grep -c -E 'WARN|ERROR' "$dir/$n.log" || true)"
  [ "$w" != 0 ] && echo "$n logged $w warnings; first: $(grep -m1 -E 'WARN|ERROR' "$dir/$n.log")" >&2
done
if [ "$died" = 1 ]; then
  echo "bench_soak: a process died before the end" >&2
  exit 1
fi
exit 0
