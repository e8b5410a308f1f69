#!/usr/bin/env bash
# checkov (Prisma Cloud's infrastructure-as-code scanner, PyPI) on template.yaml: a check of the
# template independent of sam validate and cfn-lint (infra/check-template.sh).
#
#   bash infra/checkov.sh        # exit 0 only with zero failed checks
#
# It creates (or refreshes) <repo>/.venv-checkov with the pin in infra/requirements-checkov.txt,
# in the style of infra/tools-venv.sh: a stamp inside the venv records a hash of the
# requirements and the interpreter version, and the venv is rebuilt only when it is missing or
# differs (quick when up to date). Then it runs
#
#   checkov -f template.yaml --framework cloudformation --compact
#
# and fails on any failed check. A check the template does not meet on purpose is skipped on the
# resource itself, in its Metadata, with a one-line reason:
#
#   Metadata: { checkov: { skip: [ { id: CKV_AWS_117, comment: "why" } ] } }
#
# The script also fails on a skip without a reason, on a template checkov could not parse, and
# on a run that evaluated no check. Nothing else can skip a check: checkov runs on a copy of the
# template in an empty directory with an empty HOME (no .checkov.yaml applies) and a cleared
# environment (no CKV_* or BC_* settings), offline (--skip-download: no Prisma Cloud calls; no
# update check). Never prompts (safe with CI=true). Progress goes to stderr.
#
# Environment:
#   CHECKOV_PYTHON  interpreter to build the venv with (default: python3.11, python3.12,
#                   python3.13, python3.10, then python3 - whichever exists first; 3.10-3.13)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
REQ="$ROOT/infra/requirements-checkov.txt"
VENV="$ROOT/.venv-checkov"
STAMP="$VENV/.telemeet-requirements.sha256"

log() { printf 'checkov: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f "$REQ" ]] || die "missing $REQ"
[[ -f "$ROOT/template.yaml" ]] || die "no template.yaml in $ROOT"

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1
  else shasum -a 256 | cut -d' ' -f1; fi
}

pick_python() {
  if [[ -n "${CHECKOV_PYTHON:-}" ]]; then
    command -v "$CHECKOV_PYTHON" || die "CHECKOV_PYTHON=$CHECKOV_PYTHON not found"
    return
  fi
  local c
  for c in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
      command -v "$c"
      return
    fi
  done
  die "need Python 3.10-3.13 (3.11 recommended); set CHECKOV_PYTHON"
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
  [[ -x "$VENV/bin/checkov" ]]
}

if ! venv_is_current; then
  # Serialise concurrent runs where flock(1) exists; re-check afterwards.
  if command -v flock >/dev/null 2>&1; then
    LOCK="${TMPDIR:-/tmp}/telemeet-checkov-venv-$(printf '%s' "$VENV" | sha256 | cut -c1-16).lock"
    exec 9>"$LOCK"
    flock 9
  fi
  if ! venv_is_current; then
    export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
    PY="$(pick_python)"
    start=$SECONDS
    if [[ -e "$VENV" ]]; then
      log "requirements or interpreter changed (or incomplete install): rebuilding $VENV"
      rm -rf -- "$VENV"
    fi
    log "creating $VENV with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
    "$PY" -m venv "$VENV"
    log "installing $(grep -E '^[A-Za-z0-9]' "$REQ" | tr '\n' ' ')from infra/requirements-checkov.txt"
    "$VENV/bin/python" -m pip install --quiet --no-input -r "$REQ" >&2
    ver="$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')"
    # Written last: an interrupted install leaves no stamp, so the next run starts over.
    want_stamp "$ver" >"$STAMP"
    log "ready in $((SECONDS - start))s"
  fi
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/telemeet-checkov.XXXXXX")"
trap 'rm -rf -- "$TMP"' EXIT
mkdir -p "$TMP/run" "$TMP/home"
# A copy, so the reported paths and line numbers are template.yaml's own.
cp "$ROOT/template.yaml" "$TMP/run/template.yaml"

printf '+ checkov -f template.yaml --framework cloudformation --compact --skip-download\n'
rc=0
(
  cd "$TMP/run"
  env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$TMP/home" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" \
    CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
    "$VENV/bin/checkov" -f template.yaml --framework cloudformation --compact --skip-download \
    -o cli -o json --output-file-path "console,$TMP/results.json"
) || rc=$?
# checkov exits 1 when a check failed; anything else is checkov itself failing.
if [[ $rc -ne 0 && $rc -ne 1 ]]; then
  die "checkov exited $rc (not a check result)"
fi
[[ -s "$TMP/results.json" ]] || die "checkov wrote no results"

"$VENV/bin/python" - "$TMP/results.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
# One framework, one file: a single report object (a list if checkov ran several).
reports = doc if isinstance(doc, list) else [doc]
problems = []
counts = {"passed": 0, "failed": 0, "skipped": 0}
for report in reports:
    s = report.get("summary", {})
    for k in counts:
        counts[k] += int(s.get(k, 0))
    if int(s.get("parsing_errors", 0)):
        problems.append(f"checkov could not parse the template ({s['parsing_errors']} parsing errors)")
    for c in report.get("results", {}).get("skipped_checks", []):
        reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
        if not reason or reason == "No comment provided":
            problems.append(f"{c['check_id']} skipped on {c['resource']} without a reason")
    for c in report.get("results", {}).get("failed_checks", []):
        problems.append(f"{c['check_id']} failed on {c['resource']}: {c['check_name']}")
if sum(counts.values()) == 0:
    problems.append("checkov evaluated no check at all (wrong framework or an unreadable template?)")
print(f"\nchecked: {counts['passed']} passed, {counts['failed']} failed, "
      f"{counts['skipped']} skipped (in template.yaml)")
if problems:
    print("\nFAIL:", *(f"  - {p}" for p in problems), sep="\n", file=sys.stderr)
    print("Fix the resource, or skip the check in its Metadata with a one-line reason "
          "(see infra/checkov.sh).", file=sys.stderr)
    sys.exit(1)
print("checkov: no failed checks; every skip has its reason")
PY
