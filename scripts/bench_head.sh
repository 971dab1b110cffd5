#!/usr/bin/env bash
# Fresh-query benchmark: the cost of asking a running dashboard node for its unflushed data
# (the head) in `meshmon query`, against reading the store file alone, for a writer holding
# 2,000 hosts x 50 series. Prints one table (median and p90 of --repeat runs, default 15).
# Times on a shared 2-core VM are noisy; compare runs on the same machine only.
# Usage: scripts/bench_head.sh [--repeat N] [--hosts N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p meshmon-dashboard --example bench_head
exec "${CARGO_TARGET_DIR:-target}/release/examples/bench_head" "$@"
