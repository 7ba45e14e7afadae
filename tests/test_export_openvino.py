"""The OpenVINO export: real OpenVINO conversion and CPU runtime compared with ONNX Runtime on small trained models."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest

from pipeline.contract.exports import ExportPrecision
from pipeline.contract.onnx_model import INPUT, MetadataKey
from pipeline.vision.preprocessing import preprocess, preprocess_full
from tests.trained_models import (
    classifier_onnx,
    classifier_pictures,
    detection_pictures,
    detector_onnx,
    unconvertible_onnx,
)
from training_job.exports.openvino_format import EXPORTER, MODEL_BIN, MODEL_XML, RT_INFO_SECTION
from training_job.exports.platform import ExportError, SourceModel


def reference(source: SourceModel, batch: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(source.onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT: batch})


@pytest.fixture(scope="module")
def classifier() -> tuple[SourceModel, np.ndarray]:
    source = SourceModel.from_bytes(classifier_onnx())
    pictures = classifier_pictures(per_colour=3, first_seed=500)
    return source, np.stack([preprocess(image, source.input_size) for image, _ in pictures])


@pytest.fixture(scope="module")
def detector() -> tuple[SourceModel, np.ndarray]:
    source = SourceModel.from_bytes(detector_onnx())
    scenes = detection_pictures(range(40, 46))
    return source, np.stack([preprocess_full(image, source.input_size) for image, _ in scenes])


def test_fp32_classifier_matches_onnx_runtime_and_describes_itself(classifier, tmp_path: Path) -> None:
    source, batch = classifier
    exported = EXPORTER.export(source, None, ExportPrecision.FP32, tmp_path)

    expected = reference(source, batch)  # probabilities and the unknown score
    got = exported.runner(batch)
    assert len(got) == len(expected) == 2
    for got_output, expected_output in zip(got, expected, strict=True):
        assert got_output.shape == expected_output.shape
        assert np.abs(got_output - expected_output).max() <= 1e-4

    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(exported.path) as zipped:
        assert sorted(zipped.namelist()) == ["README.md", "labels.txt", MODEL_BIN, MODEL_XML]
        assert zipped.read("labels.txt").decode().splitlines() == [label.name for label in source.labels]
        assert f"[N, 3, {source.input_size}, {source.input_size}]" in zipped.read("README.md").decode()
        assert "`unknown_score` float32 [N]" in zipped.read("README.md").decode()
        zipped.extractall(unpacked)
    model = ov.Core().read_model(unpacked / MODEL_XML)
    for key in (MetadataKey.LABELS, MetadataKey.PREPROCESSING, MetadataKey.CLASSIFICATION_TYPE):
        assert model.get_rt_info([RT_INFO_SECTION, key]).astype(str) == source.metadata[key]


def test_fp16_classifier_halves_the_weights_and_keeps_top1(classifier, tmp_path: Path) -> None:
    source, batch = classifier
    exported = EXPORTER.export(source, None, ExportPrecision.FP16, tmp_path)
    with zipfile.ZipFile(exported.path) as zipped:
        assert zipped.getinfo(MODEL_BIN).file_size < 0.6 * len(
            source.onnx_bytes
        )  # float32 weights in the ONNX
    expected, _ = reference(source, batch)
    got, _ = exported.runner(batch)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(got - expected).max() < 1e-2


def assert_same_detections(expected: list[np.ndarray], got: list[np.ndarray], score_tolerance: float) -> None:
    """Scores come sorted, so they compare place by place; boxes and classes compare against any place whose
    score ties within the tolerance (two near-equal scores may swap places between runtimes)."""
    boxes, scores, classes = expected
    got_boxes, got_scores, got_classes = got
    assert got_boxes.shape == boxes.shape and got_classes.dtype == classes.dtype
    assert np.abs(got_scores - scores).max() <= score_tolerance
    for image in range(scores.shape[0]):
        for place in range(scores.shape[1]):
            ties = np.flatnonzero(np.abs(got_scores[image] - scores[image, place]) <= score_tolerance)
            assert any(
                got_classes[image, tie] == classes[image, place]
                and np.abs(got_boxes[image, tie] - boxes[image, place]).max() <= 1e-3
                for tie in ties
            ), (image, place)


def test_fp32_detector_with_suppression_in_graph_matches_onnx_runtime(detector, tmp_path: Path) -> None:
    source, batch = detector
    exported = EXPORTER.export(source, None, ExportPrecision.FP32, tmp_path)
    expected = reference(source, batch)
    got = exported.runner(batch)
    assert (expected[1] > 0).sum() > 0
    assert_same_detections(expected, got, score_tolerance=1e-4)
    with zipfile.ZipFile(exported.path) as zipped:
        readme = zipped.read("README.md").decode()
    assert all(name in readme for name in json.loads(source.metadata[MetadataKey.OUTPUTS]))


def test_fp16_detector_keeps_each_images_best_detection(detector, tmp_path: Path) -> None:
    source, batch = detector
    exported = EXPORTER.export(source, None, ExportPrecision.FP16, tmp_path)
    boxes, scores, classes = reference(source, batch)
    got_boxes, got_scores, got_classes = exported.runner(batch)
    np.testing.assert_array_equal(got_classes[:, 0], classes[:, 0])
    assert np.abs(got_boxes[:, 0] - boxes[:, 0]).max() < 1e-2
    assert np.abs(got_scores[:, 0] - scores[:, 0]).max() < 1e-2


def test_a_model_openvino_cannot_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ExportError, match=r"OpenVINO cannot convert this model: No conversion rule .*Mystery$"
    ):
        EXPORTER.export(SourceModel.from_bytes(unconvertible_onnx()), None, ExportPrecision.FP32, tmp_path)


def test_int8_is_not_an_openvino_precision(classifier, tmp_path: Path) -> None:
    source, _ = classifier
    with pytest.raises(ExportError, match="FP32 or FP16"):
        EXPORTER.export(source, None, ExportPrecision.INT8, tmp_path)
    assert not any(tmp_path.iterdir())
