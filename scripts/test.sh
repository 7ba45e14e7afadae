#!/usr/bin/env bash
# Set up, check style, and run the whole test suite (real Azurite, ONNX Runtime, PyTorch, official SDK).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff format --check .
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
