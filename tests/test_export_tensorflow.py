"""The TensorFlow export platform on a real trained classifier and detector: onnx2tf converts them, the zipped
SavedModel runs with TensorFlow and the zipped .tflite model with the LiteRT interpreter, and both agree with ONNX
Runtime (fp32: within 1e-4, boxes within 1e-3). The exports run in a child process (tests/tensorflow_export_child.py
says why TensorFlow stays out of this one)."""

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
from pipeline.vision.preprocessing import preprocess_batch, preprocess_full
from tests.trained_models import classifier_onnx, classifier_pictures, detection_pictures, detector_onnx
from training_job.exports.parity import detector_parity
from training_job.exports.platform import ExportError, SourceModel
from training_job.exports.tensorflow_format import EXPORTER

FP32_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-3
FLAVORS = (ExportFlavor.TENSORFLOW_NORMAL, ExportFlavor.TENSORFLOW_LITE)
MODELS = ("classifier", "detector")
REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ChildExport:
    """One model in one flavor as the child process exported and ran it."""

    path: Path
    outputs: list[np.ndarray]
    connections: list[str]


@pytest.fixture(scope="module")
def sources() -> dict[str, SourceModel]:
    return {
        "classifier": SourceModel.from_bytes(classifier_onnx()),
        "detector": SourceModel.from_bytes(detector_onnx()),
    }


@pytest.fixture(scope="module")
def inputs(sources: dict[str, SourceModel]) -> dict[str, np.ndarray]:
    """Unseen pictures as the service feeds them to each model."""
    classifier_images = [image for image, _ in classifier_pictures(first_seed=7)]
    detector_size = sources["detector"].input_size
    return {
        "classifier": preprocess_batch(classifier_images, sources["classifier"].input_size),
        "detector": np.stack(
            [preprocess_full(image, detector_size) for image, _ in detection_pictures(range(16, 22))]
        ),
    }


@pytest.fixture(scope="module")
def exported(
    sources: dict[str, SourceModel], inputs: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, ExportFlavor], ChildExport]:
    """Both models in both flavors, exported and run on the inputs by the child process."""
    folder = tmp_path_factory.mktemp("tensorflow")
    for name in MODELS:
        (folder / f"{name}.onnx").write_bytes(sources[name].onnx_bytes)
        np.save(folder / f"{name}.npy", inputs[name])
    command = [sys.executable, "-m", "tests.tensorflow_export_child", str(folder), *MODELS]
    child = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-4000:]
    results = {}
    for name in MODELS:
        for flavor in FLAVORS:
            summary = json.loads((folder / f"{name}-{flavor}.json").read_text())
            with np.load(folder / f"{name}-{flavor}.npz") as outputs:
                arrays = [outputs[f"arr_{index}"] for index in range(len(outputs.files))]
            results[name, flavor] = ChildExport(Path(summary["zip"]), arrays, summary["connections"])
    return results


def expected_outputs(source: SourceModel, batch: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(source.onnx_bytes).run(None, {"data": batch})


def test_conversion_does_not_reach_the_network(exported: dict[tuple[str, ExportFlavor], ChildExport]) -> None:
    assert {key: export.connections for key, export in exported.items()} == {key: [] for key in exported}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_classifier_agrees_with_onnx_runtime(
    flavor: ExportFlavor,
    exported: dict[tuple[str, ExportFlavor], ChildExport],
    sources: dict[str, SourceModel],
    inputs: dict[str, np.ndarray],
) -> None:
    expected, expected_unknown = expected_outputs(sources["classifier"], inputs["classifier"])
    probabilities, unknown = exported["classifier", flavor].outputs
    assert probabilities.shape == expected.shape and unknown.shape == expected_unknown.shape
    assert np.abs(probabilities - expected).max() < FP32_TOLERANCE
    assert np.abs(unknown - expected_unknown).max() < FP32_TOLERANCE
    assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_detector_agrees_with_onnx_runtime(
    flavor: ExportFlavor,
    exported: dict[tuple[str, ExportFlavor], ChildExport],
    sources: dict[str, SourceModel],
    inputs: dict[str, np.ndarray],
) -> None:
    expected_boxes, expected_scores, expected_classes = expected_outputs(
        sources["detector"], inputs["detector"]
    )
    boxes, scores, classes = exported["detector", flavor].outputs
    assert (boxes.shape, scores.shape, classes.shape) == (
        expected_boxes.shape,
        expected_scores.shape,
        expected_classes.shape,
    )
    assert (
        expected_scores[:, 0] > 0.1
    ).all()  # the pictures hold detections, so the comparison means something
    assert np.abs(scores - expected_scores).max() < FP32_TOLERANCE
    # Boxes are compared as the export job compares them: matched by tag and position, because two boxes whose
    # scores tie to float precision may come out of the two runtimes' sorts in either order.
    report = detector_parity(
        [expected_boxes, expected_scores, expected_classes], [boxes, scores, classes], ExportPrecision.FP32
    )
    assert report.passed and report.max_difference < BOX_TOLERANCE, report


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
    exported: dict[tuple[str, ExportFlavor], ChildExport],
    sources: dict[str, SourceModel],
) -> None:
    for name, source in sources.items():
        path = exported[name, flavor].path
        assert path.name == f"{flavor}.zip"
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            labels = archive.read("labels.txt").decode().splitlines()
            readme = archive.read("README.md").decode()
        assert model_files | {"labels.txt", "README.md"} <= names
        assert not any(name.endswith(".onnx") for name in names)
        assert labels == [label.name for label in source.labels]
        assert '"layout": "NHWC"' in readme
        assert all(f"`{output}`" in readme for output in source.output_names)
    assert labels == ["red", "blue"]  # the detector's, last
    size = sources["classifier"].input_size
    with zipfile.ZipFile(exported["classifier", flavor].path) as archive:
        assert f"[N, {size}, {size}, 3] (NHWC)" in archive.read("README.md").decode()


@pytest.mark.parametrize(
    ("flavor", "precision", "reason"),
    [
        (ExportFlavor.TENSORFLOW_LITE, ExportPrecision.FP16, "FP32 only"),
        (ExportFlavor.TENSORFLOW_NORMAL, ExportPrecision.INT8, "FP32 only"),
        (ExportFlavor.ONNX12, ExportPrecision.FP32, "no flavor ONNX12"),
    ],
)
def test_unsupported_requests_are_refused(
    flavor: ExportFlavor,
    precision: ExportPrecision,
    reason: str,
    sources: dict[str, SourceModel],
    tmp_path: Path,
) -> None:
    with pytest.raises(ExportError, match=reason):
        EXPORTER.export(sources["classifier"], flavor, precision, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_tensorflow_loads_only_when_a_model_is_converted() -> None:
    """The exporter module loads TensorFlow only to convert or run a model (tests/tensorflow_export_child.py says
    why it must not load early), checked in a fresh interpreter: other tests (Core ML's) load it here."""
    code = (
        "import sys\n"
        "from training_job.exports.tensorflow_format import EXPORTER\n"
        "print('tensorflow' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPOSITORY
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "False"
