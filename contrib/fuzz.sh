#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target of fuzz/ for SECONDS each (default 300):
#
#   bash contrib/fuzz.sh [SECONDS] [TARGET...]
#
# Builds all targets once into fuzz/target (cargo-fuzz is installed from
# crates.io if missing; on stable Rust, RUSTC_BOOTSTRAP=1 lets it pass its
# -Z flags), replays the recorded crashes of fuzz/regressions/<target>/,
# then fuzzes each target starting from the checked-in seeds in
# fuzz/seeds/<target>/ (new inputs go to fuzz/target/corpus/<target>/, the
# seeds stay as they are; fuzz/corpus is left to ad-hoc `cargo fuzz run`). Prints one line per target:
#
#   fuzz TARGET: N execs, cov C, ft F, crashes K
#
# and, for a crash, the target and the file holding the input. Exits 1 if
# any target crashed (or a regression input still fails), 2 if the build
# failed. A crash reproduces with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET FILE
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/fuzz"
SECONDS_EACH=${1:-300}
shift $(( $# > 0 ? 1 : 0 ))
case "$SECONDS_EACH" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || exit 2
# One build for every target, in one place: `cargo fuzz run` below finds it
# up to date (same flags, same target dir).
FLAGS=(--fuzz-dir "$FUZZ" --target-dir "$FUZZ/target" -O)
echo "== cargo fuzz build (all targets, $FUZZ/target)"
cargo fuzz build "${FLAGS[@]}" || exit 2

if (( $# > 0 )); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list --fuzz-dir "$FUZZ")
fi
LOGS="$FUZZ/target/fuzz-logs"
mkdir -p "$LOGS"
failed=0
bad_targets=0

for t in "${TARGETS[@]}"; do
  bad=0
  # Recorded crashes first: each must now pass (or it is still a bug).
  reg="$FUZZ/regressions/$t"
  if compgen -G "$reg/*" >/dev/null; then
    mapfile -t inputs < <(find "$reg" -maxdepth 1 -type f ! -name '*.md' | sort)
    if (( ${#inputs[@]} > 0 )); then
      if cargo fuzz run "${FLAGS[@]}" "$t" "${inputs[@]}" -- -runs=1 >"$LOGS/$t.regressions.log" 2>&1; then
        echo "regressions $t: ${#inputs[@]} input(s) pass"
      else
        echo "regressions $t: FAIL (${#inputs[@]} input(s) in $reg; log $LOGS/$t.regressions.log)"
        bad=1
        grep -m1 -A1 -E "^thread .* panicked|ERROR: AddressSanitizer|ERROR: libFuzzer" \
          "$LOGS/$t.regressions.log" | sed 's/^/  /'
        failed=1
      fi
    fi
  fi

  work="$FUZZ/target/corpus/$t"
  seeds="$FUZZ/seeds/$t"
  mkdir -p "$work" "$seeds"
  log="$LOGS/$t.log"
  # Operation sequences and captures only get interesting when long: let
  # those inputs grow at once instead of from a few bytes.
  case "$t" in
    engine) extra=(-max_len=1024 -len_control=0) ;;
    pcap | control_request) extra=(-max_len=8192 -len_control=0) ;;
    *) extra=() ;;
  esac
  cargo fuzz run "${FLAGS[@]}" "$t" "$work" "$seeds" -- \
    -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
  rc=$?
  # The last status line ("#N ... cov: C ft: F ...") and the final stats.
  status=$(grep -E '^#[0-9]+' "$log" | tail -n1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  [[ -n "$execs" ]] || execs=$(sed -E -n 's/^#([0-9]+).*/\1/p' <<<"$status")
  cov=$(sed -E -n 's/.*cov: ([0-9]+).*/\1/p' <<<"$status")
  ft=$(sed -E -n 's/.*ft: ([0-9]+).*/\1/p' <<<"$status")
  mapfile -t crashes < <(sed -E -n 's/.*Test unit written to (.*)$/\1/p' "$log")
  if (( rc != 0 && ${#crashes[@]} == 0 )); then
    crashes=("(none written; see $log)")
  fi
  echo "fuzz $t: ${execs:-0} execs, cov ${cov:-0}, ft ${ft:-0}, crashes ${#crashes[@]}"
  if (( ${#crashes[@]} > 0 )); then
    failed=1
    bad=1
    for c in "${crashes[@]}"; do
      echo "  CRASH in target $t: $c"
    done
    grep -m1 -A3 -E "^thread .* panicked|ERROR: AddressSanitizer|ERROR: libFuzzer" "$log" \
      | sed 's/^/  /'
    echo "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $t FILE (log: $log)"
  fi
  bad_targets=$((bad_targets + bad))
done
# A closing line in the plain "N passed, N failed" form: one per target.
echo "fuzz: $(( ${#TARGETS[@]} - bad_targets )) passed, $bad_targets failed"
exit "$failed"
