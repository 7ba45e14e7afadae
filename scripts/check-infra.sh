#!/usr/bin/env bash
# Static checks of infra/ with checkov, offline: the Bicep framework, no policy download (BC_SKIP_MAPPING,
# --skip-download). checkov exits 0 on a template it cannot parse, so its JSON summary decides: a parsing error or
# a failed check fails this script. A check the templates do not meet is skipped in the resource itself with a
# `checkov:skip=ID: reason` comment, and listed with its reason in infra/README.md.
# checkov lives in .venv-tools (requirements-tools.txt): its pins clash with requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp=.venv-tools/.seer-requirements.sha
want=$(sha256sum requirements-tools.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "check-infra: installing checkov in .venv-tools (a minute the first time)"
  [ -x .venv-tools/bin/python ] || "$PYTHON" -m venv .venv-tools
  .venv-tools/bin/python -m pip install --quiet --upgrade pip
  .venv-tools/bin/python -m pip install --quiet -r requirements-tools.txt
  echo "$want" > "$stamp"
fi

report=$(mktemp)
trap 'rm -f "$report"' EXIT
BC_SKIP_MAPPING=TRUE .venv-tools/bin/checkov -d infra --framework bicep --skip-download --quiet -o json \
  >"$report" || true
.venv/bin/python - "$report" <<'PY'
import json
import sys

with open(sys.argv[1]) as file:
    report = json.load(file)
summary = report["summary"]
print(
    f"checkov {summary['checkov_version']} on infra/: {summary['passed']} passed, {summary['failed']} failed, "
    f"{summary['skipped']} skipped (reasons in infra/README.md), {summary['parsing_errors']} parsing errors"
)
for check in report["results"]["failed_checks"]:
    print(f"  FAILED {check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}")
sys.exit(1 if summary["failed"] or summary["parsing_errors"] else 0)
PY
