"""The Core ML export: real onnx2torch and coremltools conversions of small trained models. Core ML cannot run on
Linux, so the tests read the written model's spec back with coremltools and check what an app relies on."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from pipeline.contract.exports import ExportPrecision
from pipeline.contract.onnx_model import (
    DETECTOR_OUTPUTS,
    INPUT,
    MetadataKey,
)
from pipeline.vision.preprocessing import preprocess_full
from tests.trained_models import classifier_onnx, detection_pictures, detector_onnx, unconvertible_onnx
from training_job.exports.coreml_format import (
    CLASS_LABEL,
    CLASS_PROBABILITIES,
    EXPORTER,
    PACKAGE,
    check_spec,
    load_coremltools,
    outputs_agree,
)
from training_job.exports.platform import ExportError, SourceModel


def exported_spec(source: SourceModel, precision: ExportPrecision, workdir: Path) -> tuple[Any, list[str]]:
    """Export, unzip, and read the package's spec back; also the zip's file names."""
    (workdir / "export").mkdir()
    exported = EXPORTER.export(source, None, precision, workdir / "export")
    assert exported.runner is None
    with zipfile.ZipFile(exported.path) as zipped:
        names = zipped.namelist()
        labels = zipped.read("labels.txt").decode().splitlines()
        zipped.extractall(workdir / "unpacked")
    assert labels == [label.name for label in source.labels]
    return load_coremltools().utils.load_spec(str(workdir / "unpacked" / PACKAGE)), names


def weight_types(spec: Any) -> set[str]:
    from coremltools.proto import MIL_pb2

    function = spec.mlProgram.functions["main"]
    return {
        MIL_pb2.DataType.Name(output.type.tensorType.dataType)
        for block in function.block_specializations.values()
        for operation in block.operations
        if operation.type == "const"
        for output in operation.outputs
    }


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[SourceModel, Any, list[str]]:
    source = SourceModel.from_bytes(classifier_onnx())
    spec, names = exported_spec(source, ExportPrecision.FP16, tmp_path_factory.mktemp("classifier"))
    return source.without_unknown_score(), spec, names  # what the exporter converts and checks


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> tuple[SourceModel, Any, list[str]]:
    source = SourceModel.from_bytes(detector_onnx())
    spec, names = exported_spec(source, ExportPrecision.FP32, tmp_path_factory.mktemp("detector"))
    return source, spec, names


def test_fp16_classifier_is_an_image_classifier_with_the_tags_as_labels(classifier) -> None:
    source, spec, names = classifier
    assert {"README.md", "labels.txt", f"{PACKAGE}/Manifest.json"} <= set(names)
    [image] = spec.description.input
    assert image.name == INPUT
    assert (image.type.imageType.width, image.type.imageType.height) == (source.input_size, source.input_size)
    outputs = {output.name: output.type for output in spec.description.output}
    assert outputs[CLASS_LABEL].WhichOneof("Type") == "stringType"
    assert outputs[CLASS_PROBABILITIES].WhichOneof("Type") == "dictionaryType"
    assert spec.description.predictedFeatureName == CLASS_LABEL
    metadata = dict(spec.description.metadata.userDefined)
    assert metadata[MetadataKey.LABELS] == source.metadata[MetadataKey.LABELS]
    assert "FLOAT16" in weight_types(spec)
    # a Core ML classifier has exactly its label and probabilities: the unknown score is left out, and so is its
    # threshold
    assert set(outputs) == {CLASS_LABEL, CLASS_PROBABILITIES}
    assert MetadataKey.UNKNOWN_THRESHOLD not in metadata


def test_fp32_detector_keeps_its_three_outputs(detector) -> None:
    _, spec, _ = detector
    outputs = {output.name: output.type.multiArrayType for output in spec.description.output}
    assert list(outputs) == list(DETECTOR_OUTPUTS)
    assert [list(array.shape) for array in outputs.values()] == [[1, 200, 4], [1, 200], [1, 200]]
    assert "FLOAT16" not in weight_types(spec)
    assert dict(spec.description.metadata.userDefined)[MetadataKey.DOMAIN_TYPE] == "ObjectDetection"


def test_the_spec_check_refuses_a_model_that_is_not_what_seer_promises(classifier, detector) -> None:
    source, spec, _ = classifier
    check_spec(spec, source, ExportPrecision.FP16)
    renamed = replace(source, labels=[replace(label, name=f"x-{label.name}") for label in source.labels])
    with pytest.raises(ExportError, match="class labels"):
        check_spec(spec, renamed, ExportPrecision.FP16)
    with pytest.raises(
        ExportError, match=f"not a {source.input_size + 1} x {source.input_size + 1} RGB image"
    ):
        check_spec(spec, replace(source, input_size=source.input_size + 1), ExportPrecision.FP16)
    with pytest.raises(ExportError, match="metadata lacks"):
        check_spec(spec, replace(source, metadata={**source.metadata, "extra": "1"}), ExportPrecision.FP16)
    detector_source, detector_spec, _ = detector
    with pytest.raises(ExportError, match="no weights are stored as FP16"):
        check_spec(detector_spec, detector_source, ExportPrecision.FP16)
    with pytest.raises(ExportError, match="the outputs are"):
        check_spec(detector_spec, source, ExportPrecision.FP32)


def test_a_model_onnx2torch_cannot_rebuild_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="onnx2torch cannot rebuild"):
        EXPORTER.export(SourceModel.from_bytes(unconvertible_onnx()), None, ExportPrecision.FP32, tmp_path)


def test_int8_is_not_a_core_ml_precision(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="FP32 or FP16"):
        EXPORTER.export(SourceModel.from_bytes(classifier_onnx()), None, ExportPrecision.INT8, tmp_path)


def test_the_torch_rebuild_check_ignores_tied_places_but_not_a_moved_box_or_tag() -> None:
    source = SourceModel.from_bytes(detector_onnx())
    batch = np.stack(
        [preprocess_full(image, source.input_size) for image, _ in detection_pictures(range(50, 52))]
    )
    expected = ort.InferenceSession(source.onnx_bytes, providers=["CPUExecutionProvider"]).run(
        None, {INPUT: batch}
    )
    boxes, scores, classes = (source.output_names.index(name) for name in DETECTOR_OUTPUTS)
    # Distinct falling scores except places 0 and 1, which tie and hold different boxes and tags.
    expected[scores][:] = np.linspace(0.9, 0.1, expected[scores].shape[1], dtype=np.float32)
    expected[scores][:, 1] = expected[scores][:, 0]
    expected[boxes][:, 1] = expected[boxes][:, 0] + 0.05
    expected[classes][:, 1] = 1 - expected[classes][:, 0]
    assert outputs_agree(source, expected, expected)

    swapped = [array.copy() for array in expected]
    for output in (boxes, classes):
        swapped[output][0, [0, 1]] = swapped[output][0, [1, 0]]
    assert outputs_agree(source, expected, swapped)

    moved = [array.copy() for array in expected]
    moved[boxes][0, 5, 0] += 0.01
    assert not outputs_agree(source, expected, moved)
    retagged = [array.copy() for array in expected]
    retagged[classes][0, 5] = 1 - retagged[classes][0, 5]
    assert not outputs_agree(source, expected, retagged)
