#!/usr/bin/env bash
# Quick start: installs what is missing, builds Cubby, and starts the daemon
# with its defaults (data in /var/lib/cubby, API on 127.0.0.1:7070, container
# URLs through 127.0.0.1:8080). Extra flags go to `cubby serve`. It links
# the binary as /usr/local/bin/cubby, so the CLI is on PATH.
#
#   sudo ./scripts/serve.sh                 # in the background, log in /var/log/cubby.log
#   sudo ./scripts/serve.sh --foreground    # in this terminal
set -euo pipefail
cd "$(dirname "$0")/.."

foreground=0
args=()
for a in "$@"; do
  if [ "$a" = "--foreground" ]; then foreground=1; else args+=("$a"); fi
done

./scripts/setup.sh
./scripts/build.sh

bin=$PWD/target/release/cubby
# The CLI on PATH, so the README's `cubby ...` lines work as typed.
ln -sf "$bin" /usr/local/bin/cubby
if [ "$foreground" -eq 1 ]; then
  exec "$bin" serve "${args[@]}"
fi

log=/var/log/cubby.log
pidfile=/run/cubby-serve.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "cubby is already running (pid $(cat "$pidfile")); stop it with: kill $(cat "$pidfile")"
  exit 0
fi
: > "$log"
nohup "$bin" serve "${args[@]}" >>"$log" 2>&1 &
echo $! > "$pidfile"
for _ in $(seq 1 300); do
  if grep -q "cubby is running" "$log"; then
    sed -n '/cubby is running/,$p' "$log"
    echo "Log: $log    Stop: kill \$(cat $pidfile)"
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "cubby failed to start; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "cubby did not report ready within 30 s; see $log" >&2
exit 1
