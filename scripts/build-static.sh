#!/usr/bin/env bash
# Builds the release `qu` as one statically linked binary for
# x86_64-unknown-linux-musl (rustup's musl target and Debian's musl-tools:
# aws-lc is C, built with musl-gcc), and checks that it is static. As root
# it installs what is missing; otherwise it says what to install. If the
# musl target cannot be had, it falls back to a glibc release build and
# says so (that binary links glibc dynamically).
#
# Prints the binary's path on the last line of stdout. Extra arguments go
# to cargo build (e.g. --features mimalloc: mimalloc instead of musl's own
# malloc, to measure the two again; see BENCHMARKS.md → Static build).
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
say() { echo "build-static: $*" >&2; }

musl_ok=1
if [ "$(uname -m)" != x86_64 ]; then
  say "this machine is $(uname -m), not x86_64: no static build for it here"
  musl_ok=0
fi
if [ "$musl_ok" = 1 ] && ! command -v musl-gcc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing musl-tools (musl-gcc, for aws-lc's C code)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >&2; }; then
      say "cannot install musl-tools with apt-get"
      musl_ok=0
    fi
  else
    say "musl-gcc is missing: install Debian's musl-tools (apt-get install musl-tools), or run as root to let this script do it"
    musl_ok=0
  fi
fi
if [ "$musl_ok" = 1 ] && ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  say "adding the rustup target $target"
  if ! rustup target add "$target" >&2; then
    say "cannot add the rustup target $target (is rustup installed, and its distribution server reachable?)"
    musl_ok=0
  fi
fi

if [ "$musl_ok" = 1 ]; then
  CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --release --locked -p qu --target "$target" "$@" >&2
  bin="$CARGO_TARGET_DIR/$target/release/qu"
  desc=$(file -b "$bin")
  say "$bin: $desc"
  case "$desc" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) say "FAILED: the musl build is not statically linked"; exit 1 ;;
  esac
  # A static-pie (rustc's default for musl: static, and still ASLR) has
  # no interpreter; ldd says "statically linked" (a non-PIE static binary:
  # "not a dynamic executable").
  case "$desc" in
    *interpreter*) say "FAILED: $bin names a program interpreter: $desc"; exit 1 ;;
  esac
  lddout=$(ldd "$bin" 2>&1 || true)
  case "$lddout" in
    *"not a dynamic executable"*|*"statically linked"*) say "ldd: $(echo $lddout)" ;;
    *) say "FAILED: ldd lists shared libraries for $bin: $lddout"; exit 1 ;;
  esac
else
  say "NOTE: falling back to a glibc release build: it is NOT static (it links libc, libm, libgcc_s and the loader)"
  cargo build --release --locked -p qu "$@" >&2
  bin="$CARGO_TARGET_DIR/release/qu"
fi
"$bin" --version >&2
echo "$bin"
