#!/usr/bin/env bash
# Set up, check style and the Bicep templates (checkov, scripts/check-infra.sh), then test in two tiers: tests/unit (no Node or storage; seconds) so a plain mistake fails
# fast, then every other test (real Azurite, ONNX Runtime, PyTorch, official SDK).
# With arguments (files, -k EXPR, -x, ...) it runs pytest once with them instead: a selection could leave a tier
# empty, and pytest's exit code 5 for "no tests" fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The portal tests drive Debian's Chromium through Playwright (never `playwright install`: no browser downloads).
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium for the portal tests"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo -n)
  if ! { "${sudo_cmd[@]}" apt-get update -qq \
      && "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium; }; then
    echo "setup: could not install chromium (needs root or passwordless sudo, and the Debian archive);" \
      "install it with: apt-get install chromium" >&2
    exit 1
  fi
fi
.venv/bin/ruff format --check .
.venv/bin/ruff check .
bash scripts/check-infra.sh
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest tests/unit
exec .venv/bin/python -m pytest --ignore=tests/unit
