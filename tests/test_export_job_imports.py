"""The export job must run in an image without torch (the brief of the export issue): every module under
training_job/exports imports in a fresh interpreter without pulling torch or torchvision in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = """
import importlib
import pkgutil
import sys

import training_job.exports

names = sorted(m.name for m in pkgutil.iter_modules(training_job.exports.__path__) if m.name != "__main__")
for name in names + {extra!r}:
    importlib.import_module(name if "." in name else f"training_job.exports.{{name}}")
print(" ".join(names))
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))))
"""


def imported(extra: list[str]) -> tuple[list[str], list[str]]:
    code = IMPORT_ALL.format(extra=extra)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    modules, torch_modules = [*run.stdout.splitlines(), ""][:2]
    return modules.split(), torch_modules.split()


def test_export_job_imports_no_torch() -> None:
    """Also what the ONNX platform imports only when it converts (FP16, INT8)."""
    modules, torch_modules = imported(["onnxruntime.transformers.float16", "onnxruntime.quantization"])
    assert {"job", "onnx_format", "parity", "platform", "registry"} <= set(modules)
    assert torch_modules == []


def test_the_check_sees_torch() -> None:
    """The training job's own ONNX export imports torch: the same check catches it."""
    _, torch_modules = imported(["training_job.onnx_export"])
    assert "torch" in torch_modules
