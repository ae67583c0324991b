#!/usr/bin/env bash
# Runs every test of qu: unit tests, storage suite, multi-process cluster
# tests on loopback. Installs what the tests need on a fresh Debian machine
# when run as root (otherwise says what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v kill >/dev/null 2>&1 || need_pkgs+=(procps)
# SMTP tests run a real SMTP server: Debian's aiosmtpd under Debian's python.
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need_pkgs+=(python3-aiosmtpd)
# tests/packaging.rs renders the man pages with man -l and sources the bash
# completion; as root it resolves names through a real dnsmasq.
command -v man >/dev/null 2>&1 || need_pkgs+=(man-db)
command -v bash >/dev/null 2>&1 || need_pkgs+=(bash)
# tests/web.rs lints /metrics with promtool and scrapes the cluster with a
# real Prometheus (Debian's prometheus package holds both).
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
# ... and renders the status page in headless Chromium (a screenshot is kept
# under the target directory's tmp/).
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
# Clock-skew faults (the harness, tests/clock.rs) run nodes under libfaketime.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] || need_pkgs+=(faketime)
# tests/mixed_version.rs runs the previous release's qu, which
# scripts/build-previous.sh extracts from the clone's history and builds.
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
command -v flock >/dev/null 2>&1 || need_pkgs+=(util-linux)
# The fault-injection smoke (root only) partitions nodes with iptables.
if [ "$(id -u)" = 0 ]; then
  command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
  command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
  command -v dnsmasq >/dev/null 2>&1 || need_pkgs+=(dnsmasq-base)
  command -v unshare >/dev/null 2>&1 || need_pkgs+=(util-linux)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need_pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  else
    echo "test.sh: missing packages: ${need_pkgs[*]} (install them, or run as root to let this script do it)" >&2
    exit 1
  fi
fi

# One shared build for all tests; keep it outside the clone when CI asks.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The previous release's qu for the mixed-version test, built once into the
# target directory (later runs reuse it).
if ! QU_PREVIOUS_BIN=$(./scripts/build-previous.sh); then
  echo "test.sh: could not build the previous release's qu (scripts/build-previous.sh, output above)" >&2
  exit 1
fi
export QU_PREVIOUS_BIN
cargo test --workspace --locked "$@"

# Benchmark smoke: the documented bench command still runs end to end (a
# debug build on tiny settings: its figures mean nothing; see BENCHMARKS.md).
cargo build --workspace --locked --quiet
"$CARGO_TARGET_DIR/debug/qu-jepsen" bench --quick --scales 200 --scale-interval 3s \
  --window 10s --outages 2 --kills 2 --mutations 10

# Fault-injection smoke: a short seeded run (network namespaces need root).
# Seed 345 draws a pause, a leader kill, a leader clock skew, a flaky
# uplink (latency plus loss bursts through the link proxy), a node's
# replacement (new identity, same address), 200 ms of added latency on a
# node's links and a grow to 5 nodes and back. Longer:
# qu-jepsen run --time 10m [--nodes 5], qu-jepsen soak --time 30m --nodes 5.
if [ "$(id -u)" = 0 ]; then
  "$CARGO_TARGET_DIR/debug/qu-jepsen" run --seed 345 --time 45s
else
  echo "test.sh: skipping the fault-injection smoke (qu-jepsen run needs root for network namespaces)"
fi

# Packaging (root only: dpkg -i, a system user): the static build and the
# CLI tests against it, systemd-analyze on the unit, install.sh, the .deb.
if [ "$(id -u)" = 0 ]; then
  ./scripts/test-packaging.sh
else
  echo "test.sh: skipping the packaging checks (scripts/test-packaging.sh needs root)"
fi
