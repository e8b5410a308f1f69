#!/usr/bin/env bash
# The README's test command: every test of the project, from a fresh clone.
# Installs what it needs (the local stack's Python venv, cargo-nextest if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

VENV="$(bash infra/venv.sh)"
# schemathesis, for tests/openapi_fuzz.rs (its own venv, apart from the local stack's).
bash infra/fuzz-venv.sh >/dev/null
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

echo "== Zoom sandbox (Python unittest)" >&2
"$VENV/bin/python" -m unittest discover -s infra/zoom-sandbox -p 'test_*.py'

echo "== Zoho sandbox (Python unittest)" >&2
"$VENV/bin/python" -m unittest discover -s infra/zoho-sandbox -p 'test_*.py'

SPEC=../shared/fixtures/zoom/ZoomMeetingAPISpec.json
if [[ -f "$SPEC" ]]; then
  echo "== Zoom spec subset is current" >&2
  "$VENV/bin/python" infra/zoom-sandbox/vendor_spec.py --check "$SPEC"
else
  echo "== Zoom spec subset check NOT RUN: $SPEC is not beside this checkout" >&2
fi

echo "== Rust: unit, handler and black-box tests (nextest)" >&2
profile=default
[[ "${CI:-}" == "true" ]] && profile=ci
cargo nextest run --workspace --profile "$profile" "$@"
