#!/usr/bin/env bash
# Idempotent setup shared by run.sh and test.sh: a Python 3.11 venv with the service, the training job and the
# test tools, plus Node tools (Azurite). Re-installs only when a requirements or package file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.seer-requirements.sha
want=$(cat requirements.txt training_job/requirements.txt training_job/requirements-export.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python requirements (torch installs from this machine's disk; a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

npm_stamp=node_modules/.seer-package.sha
npm_want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  echo "setup: installing Node tools (Azurite, esbuild)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_want" > "$npm_stamp"
fi
npm run --silent build:portal  # the portal's one script (pipeline/portal/static/dist/portal.js), in well under a second

