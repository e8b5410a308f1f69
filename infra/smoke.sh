#!/usr/bin/env bash
# Post-deploy smoke test: tests/integration/deployed_smoke.rs against a deployed API.
#
#   API_URL=https://abc123.execute-api.us-east-1.amazonaws.com TELEMEET_TOKEN=<service JWT> bash infra/smoke.sh
#
# API_URL is the stack's ApiUrl output; TELEMEET_TOKEN a JWT with role "service" that the
# deployment accepts (your issuer, its audience). Without both it says so and runs nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

if [[ -z "${API_URL:-}" || -z "${TELEMEET_TOKEN:-}" ]]; then
  echo "smoke test NOT RUN: set API_URL (the stack's ApiUrl output) and TELEMEET_TOKEN (a service JWT for it)" >&2
  exit 0
fi
# The venv is not needed against a deployment, but the test binary links the local-stack crate.
cargo nextest run -p telemeet-local --run-ignored only -E 'test(/^deployed_smoke::/)' --no-fail-fast
