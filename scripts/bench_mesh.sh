#!/usr/bin/env bash
# Mesh benchmarks: builds the release binary and the bench_mesh example, runs it, and prints
# one Markdown table (figure | median | min | max | target | note) on stdout; progress goes
# to stderr. What each figure measures and how: agent/examples/bench_mesh/*.rs headers.
#
#   scripts/bench_mesh.sh            full run (about 4 minutes once built)
#   scripts/bench_mesh.sh --quick    shorter windows, fewer repeats (under 3 minutes once built)
#
# Further arguments go to the example: --only 1,2a,2b,3,4 (figures), --rate N (figure 2b's
# offered frames/s in total). Timings are noisy on a small shared machine: read the min/max
# columns, and compare runs from the same machine only.
#
# Everything listens on 127.0.0.1. The benchmark and every agent it starts run in a process
# group of their own, which is killed on every exit path (normal end, error, Ctrl-C, TERM).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "bench_mesh: building (release)" >&2
cargo build --release --quiet -p meshmon-agent --bin meshmon --example bench_mesh

pgid=""
cleanup() {
  if [ -n "$pgid" ]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    sleep 0.3
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# setsid: a new session and process group whose id is the benchmark's pid (a background
# child of a script is never a group leader, so setsid execs without forking).
setsid "$CARGO_TARGET_DIR/release/examples/bench_mesh" \
  --meshmon "$CARGO_TARGET_DIR/release/meshmon" "$@" &
pgid=$!
rc=0
wait "$pgid" || rc=$?
exit "$rc"
