#!/usr/bin/env bash
# Store benchmark: ingest rate of one writer, bytes per raw sample on disk, and the latency of
# 7-day `stats` and `series` queries. Prints one table (medians of --repeat runs, default 3).
# Times on a shared 2-core VM are noisy; compare runs on the same machine only.
# Usage: scripts/bench_store.sh [--repeat N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p meshmon-dashboard --example bench_store
exec "${CARGO_TARGET_DIR:-target}/release/examples/bench_store" "$@"
