#!/usr/bin/env bash
# Installs the cargo subcommands CI's hygiene steps use, each at its pinned version, into
# CARGO_HOME/bin (kept between CI runs on one machine, unlike a fresh clone's folders). Skips a
# tool whose pinned version is already there. Usage: bash infra/cargo-tools.sh [TOOL...]
# (default: all). Progress goes to stderr. Never prompts.
set -euo pipefail

declare -A PINNED=(
  [cargo-deny]=0.20.2
  [cargo-machete]=0.9.2
)
BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=("${!PINNED[@]}")
for tool in "${tools[@]}"; do
  want="${PINNED[$tool]:-}"
  if [[ -z "$want" ]]; then
    echo "cargo-tools: no pinned version for $tool (known: ${!PINNED[*]})" >&2
    exit 2
  fi
  have="$("$BIN/$tool" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)"
  if [[ "$have" == "$want" ]]; then
    continue
  fi
  echo "cargo-tools: installing $tool $want into $BIN (found: ${have:-none})" >&2
  began=$(date +%s)
  # They run for seconds on this workspace, so their build time is what counts: unoptimized,
  # no LTO, they build in about 4 min (cargo-deny) and 2 min (cargo-machete) on 2 cores,
  # where cargo-deny's own release profile (fat LTO, one codegen unit) took 11.5 min.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked --quiet --root "$(dirname "$BIN")" "$tool@$want"
  echo "cargo-tools: $tool $want installed in $(($(date +%s) - began))s" >&2
done
