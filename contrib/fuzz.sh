#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS (default 300) each and prints the
# executions and any crash. Needs cargo-fuzz (installed here if missing);
# on stable Rust, RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in $(cargo fuzz list); do
  echo "== $t for ${SECONDS_EACH}s"
  cargo fuzz run "$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 2>&1 \
    | grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs|SUMMARY|Test unit written' || true
done
