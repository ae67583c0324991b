#!/usr/bin/env bash
# Builds the previous release's qu once, for the mixed-version test
# (tests/mixed_version.rs), and prints its path on stdout:
#   QU_PREVIOUS_BIN=$(scripts/build-previous.sh)
# The release is the commit in scripts/previous-release. Its tree is
# extracted with git archive into $CARGO_TARGET_DIR/prev-src/<commit> and
# built there with the same target directory, leaving the current tree's
# artifacts alone (see the build below); the binary is kept as
# $CARGO_TARGET_DIR/prev/qu-<commit>, and when that file exists nothing is
# built.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$CARGO_TARGET_DIR"
# Absolute: the build runs in the extracted tree.
CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
export CARGO_TARGET_DIR

say() { echo "build-previous.sh: $*" >&2; }
fail() {
  say "$*"
  exit 1
}

record=scripts/previous-release
read -r commit level < <(grep -Ev '^[[:space:]]*(#|$)' "$record" | head -n 1) ||
  fail "no '<commit> <level>' line in $record"
[[ "$commit" =~ ^[0-9a-f]{40}$ ]] || fail "$record: '$commit' is not a full commit hash"
[[ "$level" =~ ^[0-9]+$ ]] || fail "$record: '$level' is not a log level"

bin="$CARGO_TARGET_DIR/prev/qu-$commit"
if [ -x "$bin" ]; then
  say "already built: the previous release ($commit, log level $level)"
  echo "$bin"
  exit 0
fi

mkdir -p "$CARGO_TARGET_DIR/prev" "$CARGO_TARGET_DIR/prev-src"
# One build at a time (two test runs sharing the target directory).
exec 9>"$CARGO_TARGET_DIR/prev/.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
  shallow=""
  [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ] && shallow=" (this is a shallow clone)"
  fail "the previous release's commit $commit (named in $record) is not in this clone$shallow; fetch the history with 'git fetch --unshallow' (or 'git fetch origin $commit'), then run this again"
fi

src="$CARGO_TARGET_DIR/prev-src/$commit"
if [ ! -f "$src/Cargo.toml" ]; then
  say "extracting $commit into $src"
  tmp="$src.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  git archive --format=tar "$commit" | tar -x -C "$tmp" ||
    fail "git archive $commit | tar -x into $tmp failed"
  rm -rf "$src"
  mv "$tmp" "$src"
fi

# The record says which level the release reads; its source must agree.
read_level=$(sed -nE 's/^pub const LOG_LEVEL: u32 = ([0-9]+);.*/\1/p' "$src/raft/src/state.rs" 2>/dev/null || true)
[ "$read_level" = "$level" ] ||
  fail "$record says $commit reads log level $level, but its raft/src/state.rs says LOG_LEVEL = ${read_level:-(not found)}; correct $record"

say "building qu of $commit (log level $level) in $src"
started=$(date +%s)
# Two things keep this build and the current tree's apart:
# - It is built for the host's triple named explicitly, so its crates go
#   to $CARGO_TARGET_DIR/<triple>/debug and its binary is not put at
#   $CARGO_TARGET_DIR/debug/qu, where cargo's tests take the current qu
#   from (build scripts and proc macros, built for the host, are shared
#   with the current tree's builds, and so are their artifacts).
# - Cargo hashes a workspace crate by its path relative to the workspace,
#   the same in both trees, and this tree's sources lie in the target
#   directory and never change: a unit of the same hash (qu's build
#   script, which is built for the host; or any of them in a build of the
#   current tree for this same triple) would be taken for fresh and
#   linked into the current tree's build. A profile setting of their own
#   (no incremental cache, which a tree nobody edits has no use for) gives
#   qu, qu-raft and qu's build script hashes of their own.
# Outside a git checkout its build.rs stamps the commit as 'unknown'; the
# ceiling keeps git from finding a repository above the extracted tree
# (the clone itself, when the target directory is inside it).
host=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$host" ] || fail "cannot tell the host's target triple from 'rustc -vV'"
(
  cd "$src"
  unset GIT_DIR GIT_WORK_TREE
  GIT_CEILING_DIRECTORIES="$CARGO_TARGET_DIR/prev-src" cargo build --locked -p qu --bin qu \
    --target "$host" \
    --config 'profile.dev.package.qu.incremental=false' \
    --config 'profile.dev.package.qu-raft.incremental=false'
) || fail "cargo build of the previous release ($commit) in $src failed (output above)"
built="$CARGO_TARGET_DIR/$host/debug/qu"
"$built" --version | grep -q '(unknown ' ||
  fail "$built does not look like a build of the extracted tree (its --version names a commit: $("$built" --version))"
cp "$built" "$bin.tmp.$$"
mv "$bin.tmp.$$" "$bin"
say "built $bin in $(($(date +%s) - started))s"
echo "$bin"
