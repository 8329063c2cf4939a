#!/usr/bin/env bash
# Installs what Cubby needs on a Debian (12+) host and is missing: the
# kernel-facing tools it drives (runc, btrfs-progs, nftables, iproute2), the
# static busybox of the built-in image, Docker's default seccomp profile
# (golang-github-containers-common: /usr/share/containers/seccomp.json), and
# what building needs (libbtrfsutil headers, clang for bindgen). Safe to
# run again.
# Options (any order):
#   --bench  also what bench/ compares against (wrk, nginx, jq);
#   --fuzz   also schemathesis (PyPI, pinned) in a venv at /opt/cubby-fuzz,
#            which the API fuzz test (crates/cubby/tests/fuzz_api.rs) runs;
#   --lint   also cargo-machete and cargo-deny (crates.io, pinned), which
#            scripts/test.sh runs on the dependencies;
#   --clients also Node.js (Debian's, when there is no node) and the
#            pinned npm packages of the TypeScript client (clients/typescript)
#            and of the provider webhook examples (examples/scripts/providers);
#   --browser also headless Chromium and its WebDriver (chromium,
#            chromium-driver), which the dashboard test drives;
#   --dns    also dnsmasq (dnsmasq-base: the program, no service), the DNS
#            server the custom-domain test runs on loopback;
#   --acme   also Pebble (Let's Encrypt's ACME test server, with its test
#            DNS server), which the ACME test runs on loopback.
set -euo pipefail

bench=0
fuzz=0
lint=0
clients=0
browser=0
dns=0
acme=0
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1 ;;
    --fuzz) fuzz=1 ;;
    --lint) lint=1 ;;
    --clients) clients=1 ;;
    --browser) browser=1 ;;
    --dns) dns=1 ;;
    --acme) acme=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --bench, --fuzz, --lint, --clients, --browser, --dns, --acme)" >&2; exit 2 ;;
  esac
done
CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2
SCHEMATHESIS_VERSION=4.32.5
FUZZ_VENV=/opt/cubby-fuzz

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (Cubby drives runc, btrfs, netlink and nftables)" >&2
  exit 1
fi

packages=(runc btrfs-progs nftables busybox-static iproute2 util-linux
          libbtrfsutil-dev clang libclang-dev pkg-config ca-certificates curl
          golang-github-containers-common)
if [ "$bench" = 1 ]; then
  packages+=(wrk nginx-light jq)
fi
if [ "$fuzz" = 1 ]; then
  packages+=(python3-venv python3-pip)
fi
if [ "$browser" = 1 ]; then
  packages+=(chromium chromium-driver)
fi
if [ "$dns" = 1 ]; then
  packages+=(dnsmasq-base)
fi
if [ "$acme" = 1 ]; then
  packages+=(pebble)
fi
# A node already installed (Debian's or NodeSource's) is kept as it is.
if [ "$clients" = 1 ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # The bench runs its own nginx; do not leave Debian's service listening.
  if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: a Rust toolchain is needed (https://rustup.rs): curl -sSf https://sh.rustup.rs | sh" >&2
  exit 1
fi

# The kernel features Cubby uses.
for fs in btrfs overlay; do
  grep -qw "$fs" /proc/filesystems || modprobe "$fs" 2>/dev/null || {
    echo "setup.sh: the kernel lacks $fs support" >&2; exit 1; }
done

if [ "$fuzz" = 1 ] && ! "$FUZZ_VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "setup.sh: installing schemathesis $SCHEMATHESIS_VERSION into $FUZZ_VENV"
  python3 -m venv "$FUZZ_VENV"
  "$FUZZ_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ "$lint" = 1 ]; then
  if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    echo "setup.sh: installing cargo-deny $CARGO_DENY_VERSION"
    cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
  fi
  if ! cargo machete --version 2>/dev/null | grep -q "$CARGO_MACHETE_VERSION"; then
    echo "setup.sh: installing cargo-machete $CARGO_MACHETE_VERSION"
    cargo install --locked --quiet "cargo-machete@$CARGO_MACHETE_VERSION"
  fi
fi

if [ "$clients" = 1 ]; then
  # The TypeScript client's packages, and the provider webhook examples'
  # (Stripe's SDK, standardwebhooks, esbuild), all pinned by lockfiles.
  for npm_dir in clients/typescript examples/scripts/providers; do
    dir="$(dirname "$0")/../$npm_dir"
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
      echo "setup.sh: installing the npm packages of $npm_dir (npm ci)"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
    fi
  done
fi
