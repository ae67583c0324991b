#!/usr/bin/env bash
# Builds the .deb of qu with cargo-deb: the static binary
# (scripts/build-static.sh), the systemd unit, completions, man pages, docs,
# and the maintainer scripts of packaging/debian/. Installs cargo-deb from
# crates.io when missing (into /var/cache/qu-cargo-tools when root, so CI
# keeps it between runs). Prints the .deb's path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "build-deb: $*" >&2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

bin=$(scripts/build-static.sh | tail -n 1)
target_args=()
case "$bin" in
  */x86_64-unknown-linux-musl/*) target_args=(--target x86_64-unknown-linux-musl) ;;
  *) say "NOTE: packaging the glibc fallback build (not static)" ;;
esac

gen=packaging/generated
rm -rf "$gen"
mkdir -p "$gen/completions"
"$bin" completion bash >"$gen/completions/qu.bash"
"$bin" completion zsh >"$gen/completions/_qu"
"$bin" completion fish >"$gen/completions/qu.fish"
"$bin" man --out "$gen/man" >&2

tools=${QU_CARGO_TOOLS:-}
if [ -z "$tools" ]; then
  if [ "$(id -u)" = 0 ]; then tools=/var/cache/qu-cargo-tools; else tools=${CARGO_HOME:-$HOME/.cargo}; fi
fi
cargo_deb="$tools/bin/cargo-deb"
if ! [ -x "$cargo_deb" ]; then
  cargo_deb=$(command -v cargo-deb || true)
fi
if [ -z "$cargo_deb" ]; then
  say "installing cargo-deb from crates.io into $tools"
  if ! CARGO_TARGET_DIR="$tools/target" cargo install --locked --root "$tools" cargo-deb >&2; then
    say "FAILED: cannot install cargo-deb (cargo install --locked cargo-deb); is crates.io reachable?"
    exit 1
  fi
  cargo_deb="$tools/bin/cargo-deb"
fi
command -v dpkg-deb >/dev/null 2>&1 || { say "FAILED: dpkg-deb is missing (a Debian machine has it)"; exit 1; }

out=$("$cargo_deb" --no-build --locked -p qu "${target_args[@]}" | tail -n 1)
say "built $out"
echo "$out"
