#!/usr/bin/env bash
# Installs qu (cargo install) and runs a local three-node demo cluster on
# loopback (ports 19001-19003), formed exactly as on real hosts:
# qu init, qu serve, qu node add. State lives under ${QU_DEMO_DIR:-/tmp/qu-demo}.
# Ctrl-C stops the nodes.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT="${QU_INSTALL_ROOT:-$HOME/.local}"
cargo install --locked --quiet --path . --root "$ROOT"
QU="$ROOT/bin/qu"
DEMO="${QU_DEMO_DIR:-/tmp/qu-demo}"
# The control sockets live here: qu serve wants their directory private.
mkdir -p "$DEMO"
chmod 700 "$DEMO"

node() { local i=$1; shift; QUPTIME_DIR="$DEMO/node$i" QUPTIME_SOCKET="$DEMO/node$i.sock" "$QU" "$@"; }

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for i in 1 2 3; do
  if [ ! -f "$DEMO/node$i/node.yaml" ]; then
    node "$i" init --advertise "127.0.0.1:1900$i" --bind 127.0.0.1 --port "1900$i" >/dev/null
  fi
  QUPTIME_DIR="$DEMO/node$i" QUPTIME_SOCKET="$DEMO/node$i.sock" "$QU" serve --timing lan >"$DEMO/node$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 100); do node "$i" status >/dev/null 2>&1 && break; [ $? -eq 2 ] && break; sleep 0.1; done
done
for i in 2 3; do
  node 1 node add "127.0.0.1:1900$i" --yes || true   # already a member on a re-run
done
sleep 1
node 2 status || true
echo
echo "A 3-node qu cluster runs on 127.0.0.1:19001-19003 (logs in $DEMO). In another shell:"
echo "  export QUPTIME_DIR=$DEMO/node2 QUPTIME_SOCKET=$DEMO/node2.sock"
echo "  $QU check add http example https://example.com; $QU check list; $QU status"
echo "Ctrl-C stops it."
wait
