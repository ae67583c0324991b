#!/usr/bin/env bash
# Line coverage of the whole suite — unit tests and the multi-process tests
# (their `qu serve` children write profiles too: cargo-llvm-cov sets
# LLVM_PROFILE_FILE for every process, and the test helper stops nodes with
# SIGTERM so they exit cleanly and flush them).
#
#   ./scripts/coverage.sh            summary per file
#   ./scripts/coverage.sh --html     HTML report in target/llvm-cov/html
#
# Installs cargo-llvm-cov (crates.io) and rustup's llvm-tools when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-llvm-cov >/dev/null 2>&1; then
  echo "coverage.sh: installing cargo-llvm-cov"
  cargo install cargo-llvm-cov --locked || { echo "coverage.sh: cannot install cargo-llvm-cov (crates.io unreachable?)" >&2; exit 1; }
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
  rustup component add llvm-tools-preview || { echo "coverage.sh: cannot add rustup's llvm-tools component" >&2; exit 1; }
fi
# An instrumented build of its own, beside the normal one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/coverage"
if [ "$(id -u)" = 0 ]; then
  sysctl -qw net.ipv4.ping_group_range="0 2147483647" || true
fi
if [ "${1:-}" = "--html" ]; then
  cargo llvm-cov --workspace --locked --html
  echo "coverage.sh: report in $CARGO_TARGET_DIR/llvm-cov/html/index.html"
else
  cargo llvm-cov --workspace --locked --summary-only
fi
