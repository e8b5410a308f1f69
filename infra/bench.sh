#!/usr/bin/env bash
# The benchmark, one command (README "Benchmarks"):
#
#   bash infra/bench.sh            # full: 20 cold starts, 2,000 warm calls per operation, 10,000 due meetings
#   bash infra/bench.sh --quick    # CI: fewer rounds; budgets fail the run (init 30 ms, RSS 48 MB, zip 6 MB)
#
# Builds the five release bootstraps (the deployed profile: lto, codegen-units=1, strip,
# panic=abort) and the bench runner, installs the Node peer's packages (npm ci), then runs
# target/release/telemeet-bench: it prints a table and writes target/bench/results.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

bash infra/venv.sh >/dev/null
echo "== building release bootstraps and the bench runner" >&2
cargo build --release --locked -p create-meeting -p get-meeting-link -p manage-meeting \
  -p zoom-webhook -p cleanup -p event-router -p telemeet-bench
echo "== Node.js peer packages (npm ci)" >&2
(cd infra/bench/node-peer && npm ci --no-audit --no-fund --loglevel=error)
# aws-lambda-ric builds a native client (curl + aws-lambda-cpp) with cmake and autotools.
# Where they are missing and apt can install them, it does; if the client still does not
# build, the peer runs under infra/bench/node-peer/loop.mjs and the report says so.
if [[ ! -f infra/bench/node-ric/node_modules/aws-lambda-ric/dist/rapid-client.node ]]; then
  missing=()
  # Debian's libtool package installs libtoolize (the libtool command is in libtool-bin).
  for tool in cmake autoconf automake libtoolize; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]})) && command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    echo "== installing ${missing[*]} for aws-lambda-ric (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake autoconf automake libtool >&2 \
      || echo "apt-get could not install them" >&2
  fi
  echo "== aws-lambda-ric (npm ci, builds its native client)" >&2
  (cd infra/bench/node-ric && npm ci --no-audit --no-fund --loglevel=error) \
    || echo "aws-lambda-ric did not build: the Node peer runs under loop.mjs" >&2
fi
exec target/release/telemeet-bench "$@"
