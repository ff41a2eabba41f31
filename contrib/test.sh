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
echo "== cargo test (offloads on)"
cargo test --workspace --locked
# The namespace suites again with every offload off (TUN virtio-net header
# and veth TSO/GSO/GRO): correctness must not depend on them (ADR 0004).
echo "== end-to-end suites with offloads off"
NAT64_E2E_OFFLOAD=off cargo test -p nat64 --locked --test e2e --test ops_e2e --test siit_e2e --test clat_e2e --test dns64_e2e --test ecmp_e2e --test ha_e2e --test fastpath_e2e
# Fuzz the whole pipeline (engine with invariants, offloads, config,
# control requests, tayga import, pcap reader, reassembly, both
# translators, SIIT/CLAT through the engine): recorded crashes replayed first, then 30 s per target.
echo "== fuzz (30 s per target)"
bash contrib/fuzz.sh 30
