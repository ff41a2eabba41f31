#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it).
# Installs missing Debian packages, then runs lint and every test: unit,
# property and RFC conformance tests, and the end-to-end namespace suite
# (the latter needs root; it is skipped with a loud notice otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

bash contrib/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
