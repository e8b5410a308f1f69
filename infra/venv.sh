#!/usr/bin/env bash
# Creates or refreshes <repo>/.venv with infra/requirements-local.txt (moto and the provider
# sandboxes' dependencies). Quick when up to date: a stamp records the requirements' hash.
# Prints the venv path on stdout; progress goes to stderr. Never prompts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv"
STAMP="$VENV/.telemeet-requirements.sha256"
PY="${LOCAL_PYTHON:-$(command -v python3.11 || command -v python3)}"
want="$(cat "$ROOT/infra/requirements-local.txt" "$ROOT"/infra/*/requirements.txt | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "$VENV"
  exit 0
fi
echo "venv: installing the local stack's Python packages into $VENV" >&2
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/infra/requirements-local.txt" >&2
echo "$want" > "$STAMP"
echo "$VENV"
