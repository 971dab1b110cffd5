#!/usr/bin/env bash
# Docker size collector benchmark: generates a tree of --files files (default 200000; sizes
# 0-4095 bytes, 1 % hard links, 1 % symlinks) in a temporary directory, then walks it --runs
# times (default 5) with the collector's walk (`docker_walk` example, release build, nice 19)
# and with `du -sbx`, and prints a table of median wall and CPU (user+sys) seconds. The tree
# is in the page cache after generation, so these are warm-cache figures; the two totals
# must agree (exit 1 otherwise). Needs python3 and GNU time (/usr/bin/time).
# Usage: scripts/bench_docker.sh [--files N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
files=200000
runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files=$2; shift 2;;
    --runs) runs=$2; shift 2;;
    *) echo "usage: $0 [--files N] [--runs N]" >&2; exit 2;;
  esac
done
cargo build --release -q -p meshmon-agent --example docker_walk
walker="${CARGO_TARGET_DIR:-target}/release/examples/docker_walk"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree="$tmp/docker"

gen_start=$(date +%s.%N)
python3 - "$tree" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
per_dir = 500
made = []
for i in range(n):
    d = os.path.join(root, f"l{i // (per_dir * 50)}", f"d{i // per_dir}")
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"f{i}")
    r = rng.random()
    if made and r < 0.01:
        os.link(rng.choice(made), p)
    elif made and r < 0.02:
        os.symlink(rng.choice(made), p)
    else:
        with open(p, "wb") as f:
            f.write(b"x" * rng.randrange(4096))
        made.append(p)
PY
gen_end=$(date +%s.%N)

# Prints "wall cpu" seconds of one run of the command; its stdout goes to $tmp/out.
timed() {
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" > "$tmp/out" 2>/dev/null || true
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$tmp/time"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: > "$tmp/walk"; : > "$tmp/du"
for _ in $(seq "$runs"); do
  timed "$walker" "$tree" >> "$tmp/walk"
  walk_bytes=$(cut -f1 "$tmp/out"); entries=$(cut -f2 "$tmp/out")
  timed du -sbx "$tree" >> "$tmp/du"
  du_bytes=$(cut -f1 "$tmp/out")
done

printf 'tree: %s files (%s entries counted), %s bytes, generated in %.1f s\n' \
  "$files" "$entries" "$walk_bytes" "$(echo "$gen_end - $gen_start" | bc)"
printf '%-26s %14s %14s\n' "median of $runs runs" "wall s" "CPU s"
printf '%-26s %14s %14s\n' "meshmon walk (nice 19)" \
  "$(cut -d' ' -f1 "$tmp/walk" | median)" "$(cut -d' ' -f2 "$tmp/walk" | median)"
printf '%-26s %14s %14s\n' "du -sbx" \
  "$(cut -d' ' -f1 "$tmp/du" | median)" "$(cut -d' ' -f2 "$tmp/du" | median)"
if [ "$walk_bytes" != "$du_bytes" ]; then
  echo "MISMATCH: walk $walk_bytes bytes, du -sbx $du_bytes bytes" >&2
  exit 1
fi
echo "totals agree: $walk_bytes bytes"
