#!/usr/bin/env bash
# Create (or refresh) <repo>/.venv-tools with the pinned deploy/check tooling from
# infra/requirements-tools.txt: aws-sam-cli, cfn-lint (<1.54, see that file), cargo-lambda + zig.
#
#   VENV="$(bash infra/tools-venv.sh)"    # stdout: the venv path, nothing else
#   "$VENV/bin/sam" --version
#
# Idempotent and quick when up to date: a stamp file inside the venv records a hash of the
# requirements file and the interpreter version; the venv is rebuilt from scratch only when the
# stamp is missing or differs (requirements changed, different Python, or an interrupted install).
# Never prompts (safe with CI=true). Progress goes to stderr.
#
# Environment:
#   TOOLS_PYTHON  interpreter to build the venv with (default: python3.11, python3.12, python3.13,
#                 python3.10, then python3 - whichever exists first; must be 3.10-3.13)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
REQ="$ROOT/infra/requirements-tools.txt"
VENV="$ROOT/.venv-tools"
STAMP="$VENV/.telemeet-requirements.sha256"

log() { printf 'tools-venv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f "$REQ" ]] || die "missing $REQ"

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1
  else shasum -a 256 | cut -d' ' -f1; fi
}

pick_python() {
  if [[ -n "${TOOLS_PYTHON:-}" ]]; then
    command -v "$TOOLS_PYTHON" || die "TOOLS_PYTHON=$TOOLS_PYTHON not found"
    return
  fi
  local c
  for c in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
      command -v "$c"
      return
    fi
  done
  die "need Python 3.10-3.13 (3.11 recommended); set TOOLS_PYTHON"
}

# The stamp covers the requirements and the interpreter the venv was built with.
want_stamp() { # $1 = "major.minor.micro" of the venv's interpreter
  { cat "$REQ"; printf 'python=%s\n' "$1"; } | sha256
}

venv_is_current() {
  [[ -f "$STAMP" && -x "$VENV/bin/python" ]] || return 1
  local ver
  ver="$("$VENV/bin/python" -c 'import platform; print(platform.python_version())' 2>/dev/null)" || return 1
  [[ "$(cat "$STAMP")" == "$(want_stamp "$ver")" ]] || return 1
  [[ -x "$VENV/bin/sam" && -x "$VENV/bin/cfn-lint" && -x "$VENV/bin/cargo-lambda" ]]
}

if venv_is_current; then
  printf '%s\n' "$VENV"
  exit 0
fi

# Serialise concurrent runs (e.g. parallel CI steps) where flock(1) exists; re-check afterwards.
if command -v flock >/dev/null 2>&1; then
  LOCK="${TMPDIR:-/tmp}/telemeet-tools-venv-$(printf '%s' "$VENV" | sha256 | cut -c1-16).lock"
  exec 9>"$LOCK"
  flock 9
  if venv_is_current; then
    printf '%s\n' "$VENV"
    exit 0
  fi
fi

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

PY="$(pick_python)"
start=$SECONDS
if [[ -e "$VENV" ]]; then
  log "requirements or interpreter changed (or incomplete install): rebuilding $VENV"
  rm -rf -- "$VENV"
fi
log "creating $VENV with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
"$PY" -m venv "$VENV"
log "installing $(grep -cE '^[A-Za-z0-9]' "$REQ") pinned packages from infra/requirements-tools.txt"
"$VENV/bin/python" -m pip install --quiet --no-input -r "$REQ" >&2

ver="$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')"
# Written last: an interrupted install leaves no stamp, so the next run starts over.
want_stamp "$ver" >"$STAMP"
log "ready in $((SECONDS - start))s: $("$VENV/bin/sam" --version), $("$VENV/bin/cfn-lint" --version), $("$VENV/bin/cargo-lambda" lambda --version)"
printf '%s\n' "$VENV"
