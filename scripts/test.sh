#!/usr/bin/env bash
# Runs every check and test, as root: formatting, lints, unit tests, and the
# end-to-end tests that drive real daemons (runc, btrfs, netlink, nftables).
# Each e2e test makes its own prefix, data dir, loop pool, bridge and nft
# table, and purges them when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

# --bench: wrk, nginx and jq, which the bench smoke test (bench/tests) drives;
# --fuzz: schemathesis, which the API fuzz test drives;
# --lint: cargo-machete and cargo-deny, which check the dependencies;
# --clients: Node.js and the TypeScript client's packages;
# --browser: headless Chromium and chromedriver, for the dashboard test;
# --dns: dnsmasq, the DNS server of the custom-domain test;
# --acme: Pebble, the ACME server of the certificate test.
./scripts/setup.sh --bench --fuzz --lint --clients --browser --dns --acme
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Dependencies: none unused (machete); licenses, bans and sources (deny).
cargo machete
cargo deny --log-level error check licenses bans sources
# RustSec's advisory database comes from GitHub. Where GitHub cannot be
# reached (this project's CI has no internet) that is said loudly, and the
# check runs wherever it can.
if cargo deny --log-level error fetch db >/dev/null 2>&1; then
  cargo deny --log-level error check advisories
else
  echo "!!! cargo deny: the RustSec advisory database (github.com) is unreachable: advisories NOT checked !!!" >&2
fi
# The helpers that run inside containers are linked statically and placed
# in target/debug/helpers/, where test daemons look for them.
PROFILE=dev ./scripts/build.sh
cargo test --workspace "$@"
