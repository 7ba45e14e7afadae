"""The TensorFlow export platform on a real trained classifier: onnx2tf converts it, the zipped SavedModel runs with
TensorFlow and the zipped .tflite model with the LiteRT interpreter, and both agree with ONNX Runtime within 1e-4.
The exports run in a child process (tests/tensorflow_export_child.py says why TensorFlow stays out of this one)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from pipeline.contract.exports import ExportFlavor, ExportPrecision
from pipeline.vision.preprocessing import preprocess_batch
from tests.trained_models import classifier_onnx, classifier_pictures, detector_onnx
from training_job.exports.platform import ExportError, SourceModel
from training_job.exports.tensorflow_format import EXPORTER

FP32_TOLERANCE = 1e-4
FLAVORS = (ExportFlavor.TENSORFLOW_NORMAL, ExportFlavor.TENSORFLOW_LITE)
REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ChildExport:
    """One flavor as the child process exported and ran it."""

    path: Path
    outputs: np.ndarray
    connections: list[str]


@pytest.fixture(scope="module")
def classifier() -> SourceModel:
    return SourceModel.from_bytes(classifier_onnx())


@pytest.fixture(scope="module")
def pictures(classifier: SourceModel) -> np.ndarray:
    """Unseen pictures as the service feeds them to the model."""
    return preprocess_batch([image for image, _ in classifier_pictures(first_seed=7)], classifier.input_size)


@pytest.fixture(scope="module")
def exported(
    classifier: SourceModel, pictures: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> dict[ExportFlavor, ChildExport]:
    """Both flavors, exported and run on the pictures by the child process."""
    folder = tmp_path_factory.mktemp("tensorflow")
    model, inputs, outdir = folder / "model.onnx", folder / "pictures.npy", folder / "out"
    model.write_bytes(classifier.onnx_bytes)
    np.save(inputs, pictures)
    outdir.mkdir()
    command = [
        sys.executable,
        "-m",
        "tests.tensorflow_export_child",
        str(model),
        str(inputs),
        str(outdir),
        *FLAVORS,
    ]
    child = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-4000:]
    results = {}
    for flavor in FLAVORS:
        summary = json.loads((outdir / f"{flavor}.json").read_text())
        results[flavor] = ChildExport(
            Path(summary["zip"]), np.load(outdir / f"{flavor}.npy"), summary["connections"]
        )
    return results


def test_conversion_does_not_reach_the_network(exported: dict[ExportFlavor, ChildExport]) -> None:
    assert {flavor: export.connections for flavor, export in exported.items()} == {
        flavor: [] for flavor in FLAVORS
    }


@pytest.mark.parametrize("flavor", [ExportFlavor.TENSORFLOW_NORMAL, ExportFlavor.TENSORFLOW_LITE])
def test_export_agrees_with_onnx_runtime(
    flavor: ExportFlavor,
    exported: dict[ExportFlavor, ChildExport],
    classifier: SourceModel,
    pictures: np.ndarray,
) -> None:
    [expected] = ort.InferenceSession(classifier.onnx_bytes).run(None, {"data": pictures})
    probabilities = exported[flavor].outputs
    assert probabilities.shape == expected.shape
    assert np.abs(probabilities - expected).max() < FP32_TOLERANCE
    assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.parametrize(
    ("flavor", "model_files"),
    [
        (ExportFlavor.TENSORFLOW_NORMAL, {"saved_model/saved_model.pb", "saved_model/fingerprint.pb"}),
        (ExportFlavor.TENSORFLOW_LITE, {"model.tflite"}),
    ],
)
def test_zip_holds_the_model_labels_and_readme(
    flavor: ExportFlavor,
    model_files: set[str],
    exported: dict[ExportFlavor, ChildExport],
    classifier: SourceModel,
) -> None:
    path = exported[flavor].path
    assert path.name == f"{flavor}.zip"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        labels = archive.read("labels.txt").decode().splitlines()
        readme = archive.read("README.md").decode()
    assert model_files | {"labels.txt", "README.md"} <= names
    assert not any(name.endswith(".onnx") for name in names)
    assert labels == [label.name for label in classifier.labels] == ["red", "green", "blue"]
    assert f"[N, {classifier.input_size}, {classifier.input_size}, 3] (NHWC)" in readme
    assert "model_outputs" in readme
    assert '"layout": "NHWC"' in readme


def test_detector_is_refused_with_a_reason(tmp_path: Path) -> None:
    detector = SourceModel.from_bytes(detector_onnx())
    with pytest.raises(ExportError, match="detectors cannot be exported to TensorFlow"):
        EXPORTER.export(detector, ExportFlavor.TENSORFLOW_LITE, ExportPrecision.FP32, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flavor", "precision", "reason"),
    [
        (ExportFlavor.TENSORFLOW_LITE, ExportPrecision.FP16, "FP32 only"),
        (ExportFlavor.TENSORFLOW_NORMAL, ExportPrecision.INT8, "FP32 only"),
        (ExportFlavor.ONNX12, ExportPrecision.FP32, "no flavor ONNX12"),
    ],
)
def test_unsupported_requests_are_refused(
    flavor: ExportFlavor, precision: ExportPrecision, reason: str, classifier: SourceModel, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match=reason):
        EXPORTER.export(classifier, flavor, precision, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_tensorflow_loads_only_when_a_model_is_converted() -> None:
    """The refusals above ran in this process; the exporter module imports TensorFlow lazily."""
    assert "tensorflow" not in sys.modules
