#!/usr/bin/env bash
# Runs every check and test, as root: formatting, lints, unit tests, and the
# end-to-end tests that drive real daemons (runc, btrfs, netlink, nftables).
# Each e2e test makes its own prefix, data dir, loop pool, bridge and nft
# table, and purges them when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

# --bench: wrk, nginx and jq, which the bench smoke test (bench/tests) drives;
# --fuzz: schemathesis, which the API fuzz test drives.
./scripts/setup.sh --bench --fuzz
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The helpers that run inside containers are linked statically and placed
# in target/debug/helpers/, where test daemons look for them.
PROFILE=dev ./scripts/build.sh
cargo test --workspace "$@"
