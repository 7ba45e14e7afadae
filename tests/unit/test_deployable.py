"""The Functions package (function_app.py + pipeline/) leaves the local-only code out, and serving never loads
torch. That the package never imports the local-only code is part of the layer rule (test_layers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = ("devhost", "tests", "bench", "training_job")  # importable, but not in the Functions package


def test_funcignore_leaves_the_local_only_code_out() -> None:
    ignored = (ROOT / ".funcignore").read_text().splitlines()
    assert [name for name in LOCAL_ONLY if f"{name}/" not in ignored] == []


def test_serving_never_imports_torch() -> None:
    code = "import sys, function_app, pipeline.services.prediction; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
