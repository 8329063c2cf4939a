#!/usr/bin/env bash
# Builds `cubby` and the helpers that run inside containers (cubby-init,
# cubby-demo, cubby-fetch). The helpers are linked statically so they run
# in any image; they go to `helpers/` next to the `cubby` binary, where the
# daemon looks for them (a directory cargo itself never writes to).
#
#   scripts/build.sh            # release build: target/release/
#   PROFILE=dev scripts/build.sh  # debug build: target/debug/
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
case "$profile" in
  dev) dir=debug ;;
  *) dir=$profile ;;
esac
cargo build --profile "$profile" -p cubby
for pkg in cubby-init cubby-demo cubby-fetch; do
  # crt-static goes to the final link only; the workspace build stays dynamic.
  cargo rustc --profile "$profile" -p "$pkg" --bin "$pkg" --target-dir target/static -- -C target-feature=+crt-static
  install -D -m 0755 "target/static/$dir/$pkg" "target/$dir/helpers/$pkg"
done
echo "built target/$dir/cubby with its static helpers in target/$dir/helpers/"
