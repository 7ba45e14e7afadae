"""The layer rule, read from the code's own imports (an AST scan, no import side effects):

    api -> services -> {store, vision, contract, core}

- `pipeline.core` (settings, errors, vocabulary, limits, domains, the box) imports nothing else of Seer;
- `pipeline.store` only core; `pipeline.contract` only store and core;
- `pipeline.vision` (imaging, preprocessing, inference, metrics, annotations, fetch) only contract and core;
- services never import `pipeline.api` (so never a wire model); `pipeline.api` reaches storage only through
  services, except for the account it is handed and the record types it maps;
- `training_job` imports only store, vision, contract and core;
- `pipeline.migrate` (the migration command, a client of two endpoints' Training API) only the wire models;
- the deployable package (`function_app.py`, `pipeline/`) never imports developer tooling (`devhost`, `tests`,
  `bench`) or `training_job`, which `.funcignore` leaves out of it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The storage package's own names (StorageAccount, get_storage), not the table and blob stores below it.
PACKAGE_ROOT_OF_STORE = "pipeline.store:root"
# layer -> the Seer modules it may import (prefix match on dotted names); its own modules always allowed.
ALLOWED: dict[str, tuple[str, ...]] = {
    "pipeline": (),
    "pipeline.core": (),
    "pipeline.vision": ("pipeline.core", "pipeline.contract"),
    "pipeline.store": ("pipeline.core",),
    "pipeline.contract": ("pipeline.core", "pipeline.store"),
    "pipeline.services": ("pipeline.core", "pipeline.vision", "pipeline.store", "pipeline.contract"),
    "pipeline.api": (
        "pipeline.core",
        "pipeline.vision",
        "pipeline.contract",
        "pipeline.services",
        "pipeline.portal",
        "pipeline.store.records",
        "pipeline.store.account",
        PACKAGE_ROOT_OF_STORE,
    ),
    "pipeline.portal": (
        "pipeline.core",
        "pipeline.contract",
    ),  # the Export dialog's options come from the contract
    # A client of the public API: its wire models, never the store.
    "pipeline.migrate": ("pipeline.api.wire",),
    "pipeline.triggers": ("pipeline.core", "pipeline.services", "pipeline.store"),
    "training_job": ("pipeline.core", "pipeline.vision", "pipeline.contract", "pipeline.store"),
    "function_app": ("pipeline.api", "pipeline.triggers"),
}
SEER = ("pipeline", "training_job", "devhost", "tests", "bench", "function_app")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every Seer module `path` imports, at any depth (lazy imports count too)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in SEER:
                yield node.lineno, name


def _layer(module: str) -> str:
    return max((layer for layer in ALLOWED if module == layer or module.startswith(f"{layer}.")), key=len)


def _allowed(layer: str, imported: str) -> bool:
    if imported == layer or imported.startswith(f"{layer}."):
        return True
    for target in ALLOWED[layer]:
        if target == PACKAGE_ROOT_OF_STORE:
            if imported in ("pipeline.store", "pipeline.store.StorageAccount", "pipeline.store.get_storage"):
                return True
        elif imported == target or imported.startswith(f"{target}."):
            return True
    return False


def _sources() -> list[Path]:
    files = [
        ROOT / "function_app.py",
        *(ROOT / "pipeline").rglob("*.py"),
        *(ROOT / "training_job").rglob("*.py"),
    ]
    return sorted(files)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_what_its_layer_may(path: Path) -> None:
    layer = _layer(_module_name(path))
    wrong = [f"line {line}: {name}" for line, name in _imports(path) if not _allowed(layer, name)]
    assert not wrong, f"{layer} may import only {ALLOWED[layer] or 'nothing of Seer'}; found {wrong}"


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    """The scan itself works: a service importing a wire model is a violation."""
    source = tmp_path / "bad.py"
    source.write_text("from pipeline.api.wire.images import Image\n")
    assert [not _allowed("pipeline.services", name) for _, name in _imports(source)] == [True]
    assert not _allowed("pipeline.api", "pipeline.store.images.ImageStore")
    assert _allowed("pipeline.api", "pipeline.store.StorageAccount")
