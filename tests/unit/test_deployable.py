"""What the Functions package (function_app.py + pipeline/) may import: never torch, which serving does without."""

from __future__ import annotations

import subprocess
import sys


def test_serving_never_imports_torch() -> None:
    code = "import sys, function_app, pipeline.services.prediction; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
