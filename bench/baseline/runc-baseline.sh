#!/usr/bin/env bash
# The floor Cubby is measured against: a hand-written provisioning of one
# container, with no API, database, firewall or proxy. Per container:
#   btrfs snapshot of a busybox rootfs → netns + veth on a bridge →
#   runc create → runc start → poll until HTTP 200 from busybox httpd.
# Prints one line per container: `<milliseconds>`. Cleans up everything it
# made, also when interrupted.
#
#   bench/baseline/runc-baseline.sh [N] [CLIENTS] (root; needs runc, btrfs-progs,
#                                                 iproute2, busybox-static, jq, curl)
#
# With CLIENTS > 1, that many workers provision at once (container i by
# worker i mod CLIENTS), as that many API clients would: the floor under
# the same concurrency.
set -euo pipefail

N=${1:-50}
CLIENTS=${2:-1}
TAG=${BASELINE_TAG:-bl$$}
WORK=$(mktemp -d /var/tmp/cubby-baseline.XXXXXX)
BR=${TAG}br
NET=10.217.$(( $$ % 200 + 20 ))
RUNC_ROOT=/run/$TAG-runc

cleanup() {
  set +e
  for i in $(seq 1 "$N"); do
    runc --root "$RUNC_ROOT" delete -f "$TAG-$i" >/dev/null 2>&1
    ip netns del "$TAG-$i" >/dev/null 2>&1
    ip link del "${TAG}v$i" >/dev/null 2>&1
  done
  ip link del "$BR" >/dev/null 2>&1
  if mountpoint -q "$WORK/pool"; then
    for s in "$WORK"/pool/c*; do [ -d "$s" ] && btrfs subvolume delete "$s" >/dev/null 2>&1; done
    btrfs subvolume delete "$WORK/pool/base" >/dev/null 2>&1
    umount "$WORK/pool"
  fi
  rm -rf "$WORK" "$RUNC_ROOT"
}
trap cleanup EXIT

# A btrfs pool in a sparse loop file, and the base rootfs in a subvolume.
truncate -s 2G "$WORK/pool.img"
mkfs.btrfs -q "$WORK/pool.img" >/dev/null 2>&1
mkdir -p "$WORK/pool"
mount -o loop "$WORK/pool.img" "$WORK/pool"
btrfs subvolume create "$WORK/pool/base" >/dev/null
mkdir -p "$WORK/pool/base"/{bin,www,proc,sys,dev,tmp,etc}
cp /bin/busybox "$WORK/pool/base/bin/busybox"
ln -s busybox "$WORK/pool/base/bin/sh"
echo ok > "$WORK/pool/base/www/index.html"

ip link add "$BR" type bridge
ip addr add "$NET.1/24" dev "$BR"
ip link set "$BR" up

# One OCI spec; each container only changes its rootfs and netns path.
(cd "$WORK" && runc spec)
jq '.process.terminal = false
  | .process.args = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
  | .root.readonly = false' "$WORK/config.json" > "$WORK/spec.json"

provision() {
  local i=$1 start end
  start=$(date +%s%N)
  btrfs subvolume snapshot "$WORK/pool/base" "$WORK/pool/c$i" >/dev/null
  ip netns add "$TAG-$i"
  ip link add "${TAG}v$i" type veth peer name eth0 netns "$TAG-$i"
  ip link set "${TAG}v$i" master "$BR" up
  ip -n "$TAG-$i" addr add "$NET.$(( i % 250 + 2 ))/24" dev eth0
  ip -n "$TAG-$i" link set eth0 up
  ip -n "$TAG-$i" link set lo up
  mkdir -p "$WORK/b$i"
  jq --arg root "$WORK/pool/c$i" --arg ns "/var/run/netns/$TAG-$i" \
    '.root.path = $root | .linux.namespaces = [.linux.namespaces[] | if .type == "network" then .path = $ns else . end]' \
    "$WORK/spec.json" > "$WORK/b$i/config.json"
  runc --root "$RUNC_ROOT" create --bundle "$WORK/b$i" "$TAG-$i" </dev/null >/dev/null 2>&1
  runc --root "$RUNC_ROOT" start "$TAG-$i"
  until curl -fs -o /dev/null --max-time 1 "http://$NET.$(( i % 250 + 2 )):8080/index.html"; do sleep 0.001; done
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 ))e-3 | awk '{printf "%.2f\n", $1}'
  # Keep the address space small: tear down as we go (not timed).
  runc --root "$RUNC_ROOT" delete -f "$TAG-$i" >/dev/null 2>&1
  ip netns del "$TAG-$i"
  btrfs subvolume delete "$WORK/pool/c$i" >/dev/null
}

if [ "$CLIENTS" -le 1 ]; then
  for i in $(seq 1 "$N"); do provision "$i"; done
else
  for w in $(seq 0 $(( CLIENTS - 1 ))); do
    (
      for i in $(seq 1 "$N"); do
        if [ $(( i % CLIENTS )) -eq "$w" ]; then provision "$i"; fi
      done
    ) &
  done
  wait
fi
