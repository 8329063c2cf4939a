#!/usr/bin/env bash
# Coverage-guided fuzzing of Cubby's parsers with cargo-fuzz (libFuzzer).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs a nightly toolchain (rustup) and installs cargo-fuzz if missing.
# Seeds come from crates/fuzz/corpus; findings land in fuzz/artifacts/.
# CI runs the same targets on stable, bounded, via `cargo test -p cubby-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(firewall_rules claims archive magic_comments)
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  [ -d "crates/fuzz/corpus/$t" ] && cp -n crates/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  echo "== $t for ${seconds}s"
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1)
done
