"""bench/training_core.py runs on a lent GPU machine that has torch but not the local host's HTTP stack, and
scripts/device-bench.sh carries only the wheels the training core needs: importing the bench must not pull in
the host (devhost's package imports nothing, for this)."""

from __future__ import annotations

import subprocess
import sys

HOST_STACK = ("uvicorn", "starlette", "fastapi", "devhost.host", "pipeline.api")


def test_the_training_core_bench_imports_nothing_of_the_http_host() -> None:
    code = f"import sys, bench.training_core; print([m for m in {HOST_STACK!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
