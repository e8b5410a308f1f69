#!/usr/bin/env bash
# Lint template.yaml (and sanity-check samconfig.toml) with the pinned tools in .venv-tools.
#
#   bash infra/check-template.sh          # exit 0 only with zero errors AND zero warnings
#
# Steps (each printed before it runs):
#   1. infra/tools-venv.sh                 create/refresh .venv-tools (quick when up to date)
#   2. self-check                          cfn-lint must still expand SAM: tiny broken SAM
#                                          templates must FAIL it. cfn-lint >=1.54 validates SAM
#                                          resources without the SAM transform and passes them.
#   3. sam validate --lint                 SAM CLI's own cfn-lint run; any match fails
#   4. cfn-lint template.yaml              exit code != 0 on any error or warning
#   5. MeetingsTable stays plain data      infra/local-gateway creates the local table from it
#   6. samconfig.toml parses               dev and prod environments (sam reads it on every command)
#   7. sam build                           infra/warm-zig.sh (arm64 target, zig wrappers written
#                                          once), then the eight arm64 release binaries with
#                                          cargo-lambda + zig (SKIP_SAM_BUILD=1 skips it, and says so)
# Steps 3-7 always all run; the script exits 1 at the end if any of them found a problem.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
# Deterministic region for cfn-lint (it checks resource availability per region).
export AWS_DEFAULT_REGION=us-east-1
REGION=us-east-1

say() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
run() { # print the command, then run it
  printf '+ %s\n' "$*"
  "$@"
}

say "tools venv"
printf '+ bash infra/tools-venv.sh\n'
VENV="$(bash infra/tools-venv.sh)"
printf '%s\n' "$VENV"
export PATH="$VENV/bin:$PATH"
printf 'sam:      %s\ncfn-lint: %s\n' "$(sam --version)" "$(cfn-lint --version)"

[[ -f template.yaml ]] || fail "no template.yaml in $ROOT"

# ---------------------------------------------------------------------------------------------
say "self-check: cfn-lint must expand SAM (broken SAM templates must fail)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/telemeet-cfnlint-selfcheck.XXXXXX")"
trap 'rm -rf -- "$TMP"' EXIT

# Canary 1: !Ref to a parameter that does not exist, inside a SAM Policies statement. With the
# SAM transform this is E1020; cfn-lint >=1.54 (SAM schemas instead of the transform) passes it.
cat >"$TMP/broken-ref.yaml" <<'YAML'
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: telemeet cfn-lint self-check - MUST FAIL (Ref to a missing parameter)
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Architectures: [arm64]
      Handler: bootstrap
      CodeUri: ./
      Policies:
        - Statement:
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Ref SelfCheckMissingParameter
YAML
# Canary 2: a Lambda runtime that does not exist (also passed by cfn-lint >=1.54).
cat >"$TMP/broken-runtime.yaml" <<'YAML'
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: telemeet cfn-lint self-check - MUST FAIL (unknown runtime)
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2099
      Architectures: [arm64]
      Handler: bootstrap
      CodeUri: ./
YAML

canary() { # $1 = file, $2 = text the failure must mention
  local out rc=0
  printf '+ (cd %s && cfn-lint %s)   # must fail mentioning %s\n' "$TMP" "$1" "$2"
  # Run inside the temp dir: nothing of the project (e.g. a .cfnlintrc) applies to the canary.
  out="$(cd "$TMP" && cfn-lint -- "$1" 2>&1)" || rc=$?
  printf '%s\n' "$out" | sed 's/^/    /'
  if [[ $rc -eq 0 ]]; then
    fail "cfn-lint no longer checks SAM: it passed the deliberately broken $1 (exit 0). cfn-lint >=1.54 does not expand SAM templates; keep it below 1.54 in infra/requirements-tools.txt."
  fi
  if ! grep -qF -- "$2" <<<"$out"; then
    fail "cfn-lint failed on $1 (exit $rc) but not for the planted error '$2'; the self-check is not conclusive."
  fi
  printf '    ok: rejected (exit %s)\n' "$rc"
}
canary broken-ref.yaml SelfCheckMissingParameter
canary broken-runtime.yaml provided.al2099

# ---------------------------------------------------------------------------------------------
# Both linters always run, so one run shows every problem; the script fails afterwards.
problems=()

say "sam validate --lint"
run sam validate --lint --template template.yaml --region "$REGION" \
  || problems+=("sam validate --lint reported problems in template.yaml")

say "cfn-lint"
# cfn-lint exit code is a bit mask: 2 = error, 4 = warning, 8 = informational (off by default).
rc=0
run cfn-lint template.yaml || rc=$?
if [[ $rc -eq 0 ]]; then
  echo "no errors, no warnings"
else
  problems+=("cfn-lint reported problems in template.yaml (exit $rc: 2=error 4=warning 8=info)")
fi

# ---------------------------------------------------------------------------------------------
say "MeetingsTable is plain data (infra/local-gateway builds the local table from it)"
run python - template.yaml <<'PY' || problems+=("MeetingsTable must stay a plain AWS::DynamoDB::Table (see above)")
import sys
from cfnlint.decode import decode  # understands !Ref/!Sub/... short forms
tpl, errs = decode(sys.argv[1])
if errs:
    sys.exit(f"cannot parse {sys.argv[1]}: {errs}")
res = (tpl.get("Resources") or {}).get("MeetingsTable")
if not res or res.get("Type") != "AWS::DynamoDB::Table":
    sys.exit("no resource MeetingsTable of type AWS::DynamoDB::Table")
props = res.get("Properties") or {}
if "TableName" in props:
    sys.exit("MeetingsTable must not set TableName (CloudFormation names it)")
def intrinsics(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "Ref" or k.startswith("Fn::"):
                yield path
            yield from intrinsics(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from intrinsics(x, f"{path}[{i}]")
keys = ["BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes", "TimeToLiveSpecification", "StreamSpecification"]
bad = [p for k in keys if k in props for p in intrinsics(props[k], k)]
if bad:
    sys.exit("intrinsic functions in MeetingsTable: " + ", ".join(sorted(set(bad))))
print("ok:", ", ".join(k for k in keys if k in props))
PY

# ---------------------------------------------------------------------------------------------
say "samconfig.toml"
if [[ -f samconfig.toml ]]; then
  run python - samconfig.toml <<'PY' || problems+=("samconfig.toml is not valid (see above)")
import sys, tomlkit  # tomlkit: the TOML library SAM CLI itself uses
cfg = tomlkit.parse(open(sys.argv[1], encoding="utf-8").read())
assert str(cfg.get("version")) == "0.1", f"samconfig version must be 0.1, got {cfg.get('version')!r}"
envs = [k for k in cfg if k != "version"]
assert {"dev", "prod"} <= set(envs), f"samconfig needs dev and prod environments, has {envs}"
for env in envs:
    g = cfg[env].get("global", {}).get("parameters", {})
    d = cfg[env].get("deploy", {}).get("parameters", {})
    assert g.get("stack_name") or d.get("stack_name"), f"[{env}] has no stack_name"
print("parses; environments:", ", ".join(envs))
PY
else
  problems+=("samconfig.toml missing")
fi

# ---------------------------------------------------------------------------------------------
say "sam build (arm64 release binaries, cargo-lambda + zig)"
if [[ "${SKIP_SAM_BUILD:-}" == "1" ]]; then
  echo "sam build NOT RUN: SKIP_SAM_BUILD=1"
else
  # The arm64 target, and cargo-lambda's zig wrappers written once before the parallel build
  # (on a new machine, parallel first runs race to write them; see infra/warm-zig.sh).
  run bash infra/warm-zig.sh || problems+=("infra/warm-zig.sh could not prepare the arm64 build (see above)")
  BUILD_DIR="$ROOT/.aws-sam/build"
  if run sam build --config-env dev --build-dir "$BUILD_DIR"; then
    for fn in CreateMeetingFunction GetMeetingLinkFunction ManageMeetingFunction ZoomWebhookFunction CleanupFunction OrgAdminFunction EventRouterFunction EventDeliveryFunction; do
      bin="$BUILD_DIR/$fn/bootstrap"
      # ELF e_machine (2 bytes at offset 18) is 183 for AArch64.
      if [[ -x "$bin" ]] && [[ "$(od -An -t u2 -j 18 -N 2 "$bin" | tr -d ' ')" == "183" ]]; then
        printf '  %-24s %s bytes (arm64)\n' "$fn" "$(stat -c %s "$bin")"
      else
        problems+=("sam build did not produce an arm64 bootstrap for $fn")
      fi
    done
  else
    problems+=("sam build failed")
  fi
fi

if ((${#problems[@]})); then
  printf '\nFAIL:\n' >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
say "template checks passed"
