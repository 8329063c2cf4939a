#!/usr/bin/env bash
# Installs what Cubby needs on a Debian (12+) host and is missing: the
# kernel-facing tools it drives (runc, btrfs-progs, nftables, iproute2), the
# static busybox of the built-in image, Docker's default seccomp profile
# (golang-github-containers-common: /usr/share/containers/seccomp.json), and
# what building needs (libbtrfsutil headers, clang for bindgen). Safe to
# run again.
# `setup.sh --bench` also installs what bench/ compares against (wrk, nginx).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (Cubby drives runc, btrfs, netlink and nftables)" >&2
  exit 1
fi

packages=(runc btrfs-progs nftables busybox-static iproute2 util-linux
          libbtrfsutil-dev clang libclang-dev pkg-config ca-certificates curl
          golang-github-containers-common)
if [ "${1:-}" = "--bench" ]; then
  packages+=(wrk nginx-light jq)
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
