#!/usr/bin/env bash
# Container collector benchmark: the wire bytes/s that container series add to a host, from
# encoded frames (`container_wire` example). Starts a Podman API socket and
# --containers containers (default 20) from a busybox rootfs: 2 busy (each capped at 0.2 CPU),
# 1 writing a file every second, the rest idle `sleep`; measures --seconds (default 60) with the
# real collector, then the same count of synthetic containers whose every value changes every
# second (worst case). Removes everything it started. Needs root, podman, runc, busybox-static
# (as .ci/run installs them).
# Usage: scripts/bench_containers.sh [--containers N] [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=20
seconds=60
while [ $# -gt 0 ]; do
  case "$1" in
    --containers) n=$2; shift 2;;
    --seconds) seconds=$2; shift 2;;
    *) echo "usage: $0 [--containers N] [--seconds N]" >&2; exit 2;;
  esac
done
# Debug build: the bytes do not depend on the profile.
cargo build -q -p meshmon-agent --example container_wire
wire="${CARGO_TARGET_DIR:-target}/debug/examples/container_wire"
tmp=$(mktemp -d)
prefix="meshmon-bench-$$"
export CONTAINERS_CONF="$tmp/containers.conf"
cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
svc=""
cleanup() {
  podman ps -a --format '{{.Names}}' | grep "^$prefix-" | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
  [ -n "$svc" ] && kill "$svc" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/"
for l in sh sleep true; do ln -s busybox "$tmp/rootfs/bin/$l"; done
tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
podman import -q "$tmp/rootfs.tar" localhost/meshmon-test-busybox:latest >/dev/null
podman system service --time=0 "unix://$tmp/podman.sock" >/dev/null 2>&1 &
svc=$!
for _ in $(seq 100); do [ -S "$tmp/podman.sock" ] && break; sleep 0.1; done
img=localhost/meshmon-test-busybox:latest
for i in $(seq 1 "$n"); do
  name=$(printf '%s-%02d' "$prefix" "$i")
  if [ "$i" -le 2 ]; then
    podman run -d -q --name "$name" --cpus 0.2 "$img" sh -c 'while :; do :; done' >/dev/null
  elif [ "$i" -eq 3 ]; then
    podman run -d -q --name "$name" "$img" sh -c 'while :; do echo x >> /f; sleep 1; done' >/dev/null
  else
    podman run -d -q --name "$name" "$img" sleep 100000 >/dev/null
  fi
done
echo "real collector, $n Podman containers, $seconds s:"
"$wire" --socket "$tmp/podman.sock" --seconds "$seconds"
echo
echo "synthetic worst case, $n containers, every value changing every second, $seconds s:"
"$wire" --synthetic "$n" --seconds "$seconds"
