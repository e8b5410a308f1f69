#!/usr/bin/env bash
# The README's test command: every test of the project, from a fresh clone.
# Installs what it needs: the local stack's Python venv, schemathesis' venv, chromium (apt) and
# playwright-core (npm) for the browser test, cargo-nextest if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

VENV="$(bash infra/venv.sh)"
# schemathesis, for tests/integration/openapi_fuzz.rs (its own venv, apart from the local stack's).
bash infra/fuzz-venv.sh >/dev/null
# The browser test (tests/integration/demo_page.rs): Debian's chromium driven by playwright-core, which
# downloads no browser of its own.
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    echo "test: installing Debian's chromium for the browser test" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
  else
    echo "test: chromium is missing and cannot be installed here (needs root and apt-get)" >&2
  fi
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >&2)
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

echo "== Zoom sandbox (Python unittest)" >&2
"$VENV/bin/python" -m unittest discover -s infra/zoom-sandbox -p 'test_*.py'

echo "== Zoho sandbox (Python unittest)" >&2
"$VENV/bin/python" -m unittest discover -s infra/zoho-sandbox -p 'test_*.py'

echo "== Event receiver (Python unittest)" >&2
"$VENV/bin/python" -m unittest discover -s infra/event-receiver -p 'test_*.py'

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
