#!/usr/bin/env bash
# Creates or refreshes <repo>/.venv-fuzz with infra/requirements-fuzz.txt (schemathesis), apart
# from the local stack's venv. Quick when up to date. Prints the venv path on stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv-fuzz"
STAMP="$VENV/.telemeet-requirements.sha256"
PY="${LOCAL_PYTHON:-$(command -v python3.11 || command -v python3)}"
want="$(sha256sum "$ROOT/infra/requirements-fuzz.txt" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/schemathesis" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "$VENV"
  exit 0
fi
echo "fuzz venv: installing schemathesis into $VENV" >&2
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/infra/requirements-fuzz.txt" >&2
echo "$want" > "$STAMP"
echo "$VENV"
