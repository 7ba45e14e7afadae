"""What the Functions package (function_app.py + pipeline/) may import: nothing that `.funcignore` leaves out of
it, which would fail only once deployed, and never torch, which serving does without."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = ("devhost", "tests", "bench", "training_job")  # importable, but not in the Functions package


def deployable_sources() -> list[Path]:
    return [ROOT / "function_app.py", *sorted((ROOT / "pipeline").rglob("*.py"))]


def imported_packages(source: Path) -> set[str]:
    """The top-level names of every absolute import in `source`, wherever it appears (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_funcignore_leaves_the_local_only_code_out() -> None:
    ignored = (ROOT / ".funcignore").read_text().splitlines()
    assert [name for name in LOCAL_ONLY if f"{name}/" not in ignored] == []


def test_deployable_package_never_imports_local_only_code() -> None:
    imports = {source.relative_to(ROOT): imported_packages(source) for source in deployable_sources()}
    assert {"azure", "pipeline"} <= set().union(*imports.values())  # the scan sees the real imports
    offenders = {str(source): sorted(names & set(LOCAL_ONLY)) for source, names in imports.items()}
    assert {source: names for source, names in offenders.items() if names} == {}


def test_serving_never_imports_torch() -> None:
    code = "import sys, function_app, pipeline.services.prediction; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
