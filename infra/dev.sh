#!/usr/bin/env bash
# The README's dev command: the whole service on loopback (moto, Zoom sandbox, local gateway on
# $PORT, default 3000), with curl examples and fresh dev tokens. Ctrl-C stops everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
bash infra/venv.sh >/dev/null
cargo build --quiet --bin local-gateway --bin local-stack
exec target/debug/local-stack
