"""The training image copies only part of the service package (training_job/Dockerfile: pipeline/__init__.py and
the core, contract, vision and store layers; tests/test_infra.py checks that list). Every training_job module
must import with nothing else: a fresh interpreter whose import system refuses the rest proves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_LAYERS = ("core", "contract", "vision", "store")

GUARDED_IMPORT = """
import importlib
import importlib.abc
import pkgutil
import sys

LAYERS = {layers!r}


class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top, _, rest = name.partition(".")
        layer = rest.partition(".")[0]
        if top in ("devhost", "function_app", "tests", "bench") or (top == "pipeline" and rest and layer not in LAYERS):
            raise ImportError(f"{{name}} is not in the training image")
        return None


sys.meta_path.insert(0, NotInTheImage())
import training_job

names = sorted(m.name for m in pkgutil.iter_modules(training_job.__path__) if m.name != "__main__")
for name in names:
    importlib.import_module(f"training_job.{{name}}")
print(" ".join(names))
"""


def test_training_job_imports_only_what_its_image_holds() -> None:
    code = GUARDED_IMPORT.format(layers=IMAGE_LAYERS)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert {"job", "train", "detect"} <= set(run.stdout.split())


def test_the_guard_refuses_the_service_layers() -> None:
    """The check above would pass vacuously if the guard let everything through."""
    code = GUARDED_IMPORT.format(layers=IMAGE_LAYERS) + "import pipeline.services.training\n"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "pipeline.services is not in the training image" in run.stderr


def test_a_classifier_job_imports_no_torchvision() -> None:
    """torchvision costs seconds of every job's start (it imports torch._dynamo); only detection uses it."""
    code = (
        "import sys\n"
        "import training_job.job, training_job.train\n"
        "assert 'torchvision' not in sys.modules, 'a classifier job imported torchvision'\n"
        "import training_job.detect\n"
        "assert 'torchvision' in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
