#!/usr/bin/env bash
# Installs qu (cargo install) and runs a local demo node on loopback.
# State lives under ${QU_DEMO_DIR:-/tmp/qu-demo}; stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo install --locked --path . --root "${QU_INSTALL_ROOT:-$HOME/.local}"
QU="${QU_INSTALL_ROOT:-$HOME/.local}/bin/qu"
DEMO="${QU_DEMO_DIR:-/tmp/qu-demo}"
mkdir -p "$DEMO"

export QUPTIME_DIR="$DEMO/node1" QUPTIME_SOCKET="$DEMO/node1.sock"
if [ ! -f "$QUPTIME_DIR/node.yaml" ]; then
  "$QU" init --advertise 127.0.0.1:19001 --bind 127.0.0.1 --port 19001
fi
"$QU" serve >"$DEMO/node1.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do "$QU" status >/dev/null 2>&1 && break; sleep 0.1; done
"$QU" status
echo
echo "qu is running (log: $DEMO/node1.log). In another shell:"
echo "  export QUPTIME_DIR=$QUPTIME_DIR QUPTIME_SOCKET=$QUPTIME_SOCKET"
echo "  $QU status; $QU trust list"
echo "Ctrl-C stops it."
wait $pid
