#!/usr/bin/env bash
# Prepare a machine for `sam build`: the arm64 Rust target, and cargo-lambda's zig wrappers,
# written once and serially. Run it before every `sam build` (make build and
# infra/check-template.sh do); quick when already done.
#
#   bash infra/warm-zig.sh          # stdout: nothing; progress on stderr
#
# Why: cargo-lambda embeds cargo-zigbuild. On its first cross build it writes the wrapper
# scripts zig links through,
#   ${CARGO_ZIGBUILD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}}/cargo-zigbuild/<version>/wrappers/<hash of the cargo-lambda path>/
#     zigcc-aarch64-unknown-linux-gnu-<hash of the cc args>.sh, zigcxx-...sh, zigranlib.sh, ar, lib
# and runs zigcc right away (`zig cc -E -v`, "collect zig cc options"). samconfig.toml builds
# the eight functions in parallel. On a machine without the wrappers, one cargo-lambda can
# write the file while another runs it, and that exec fails: "Failed to collect `zig cc`
# options ... Text file busy (os error 26)". A wrapper is only written when its content
# differs, so once one run has written them, parallel runs only read them.
#
# How: one `cargo lambda build --release --arm64` of a throwaway dependency-free crate, run
# from the repository root. cargo-zigbuild derives the wrapper from the cargo-lambda binary,
# the target and the cargo configuration in effect there, so sam build's runs find this
# wrapper. The build itself takes seconds and leaves nothing in the project.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
log() { printf 'warm-zig: %s\n' "$*" >&2; }

TARGET=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$TARGET"; then
  log "rustup target add $TARGET"
  rustup target add "$TARGET" >&2
fi

VENV="$(bash infra/tools-venv.sh)"
export PATH="$VENV/bin:$PATH"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/telemeet-warm-zig.XXXXXX")"
trap 'rm -rf -- "$TMP"' EXIT
mkdir -p "$TMP/src"
cat >"$TMP/Cargo.toml" <<'TOML'
[package]
name = "telemeet-warm-zig"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]
TOML
echo 'fn main() {}' >"$TMP/src/main.rs"

log "cargo lambda build --release --arm64 (a throwaway crate: writes cargo-zigbuild's zig wrappers once)"
start=$SECONDS
# Its own target dir: nothing lands in the project's target/ (or in $CARGO_TARGET_DIR).
if ! out="$(CARGO_TARGET_DIR="$TMP/target" cargo lambda build --release --arm64 \
  --manifest-path "$TMP/Cargo.toml" 2>&1)"; then
  printf '%s\n' "$out" >&2
  log "error: the warm-up build failed (above)"
  exit 1
fi
log "ready in $((SECONDS - start))s"
