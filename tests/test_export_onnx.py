"""The ONNX platform on small real models (tests/trained_models.py): each precision passes the parity check on the
models' own training pictures (what the export job checks on), INT8 runs in integer kernels from the first to the
last convolution (what makes it faster than FP32), and ONNX10, which these models cannot be faithfully expressed
in, fails with its reason rather than giving a wrong model."""

from __future__ import annotations

import dataclasses
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pipeline.contract.exports import ExportFlavor, ExportPrecision, onnx_model_of_export
from pipeline.contract.onnx_model import INPUT, UNKNOWN_OUTPUT
from pipeline.vision.preprocessing import preprocess, preprocess_full
from tests.trained_models import classifier_onnx, classifier_pictures, detection_pictures, detector_onnx
from training_job.exports.onnx_format import EXPORTER, onnx_runner
from training_job.exports.parity import check_parity
from training_job.exports.platform import ExportedModel, ExportError, SourceModel, unknown_thresholds


def model_of(exported: ExportedModel) -> bytes:
    return onnx_model_of_export(exported.path.read_bytes())


def source_and_inputs(detector: bool) -> tuple[SourceModel, np.ndarray]:
    if detector:
        source = SourceModel.from_bytes(detector_onnx())
        pictures = [image for image, _ in detection_pictures(range(16))]
        inputs = np.stack([preprocess_full(image, source.input_size) for image in pictures])
    else:
        source = SourceModel.from_bytes(classifier_onnx())
        pictures = [image for image, _ in classifier_pictures()]
        inputs = np.stack([preprocess(image, source.input_size) for image in pictures])
    return dataclasses.replace(source, calibration=inputs), inputs


@pytest.mark.parametrize("detector", [False, True], ids=["classifier", "detector"])
@pytest.mark.parametrize("precision", list(ExportPrecision))
def test_every_precision_passes_parity(tmp_path: Path, detector: bool, precision: ExportPrecision) -> None:
    source, inputs = source_and_inputs(detector)
    exported = EXPORTER.export(source, ExportFlavor.ONNX12, precision, tmp_path)
    assert exported.runner is not None
    with zipfile.ZipFile(exported.path) as archive:  # as Custom Vision's ONNX exports are
        assert sorted(archive.namelist()) == ["labels.txt", "model.onnx"]
        assert archive.read("labels.txt").decode() == source.labels_text
    reference_file = tmp_path / "source.onnx"
    reference_file.write_bytes(source.onnx_bytes)
    report = check_parity(
        onnx_runner(reference_file),
        exported.runner,
        inputs,
        precision,
        detector,
        unknown_thresholds(source, exported),
    )
    assert report.passed, report.describe()
    reports_verdicts = not detector and precision != ExportPrecision.FP32
    assert (report.unknown_agreement is not None) == reports_verdicts, report
    if reports_verdicts:
        assert report.unknown_agreement == 1.0, report.describe()  # its own training pictures: all known
    if precision == ExportPrecision.FP32:
        assert model_of(exported) == source.onnx_bytes  # ONNX12 FP32 is the model as served
    else:
        assert len(model_of(exported)) < 0.6 * len(source.onnx_bytes)


def test_int8_moves_the_unknown_threshold_by_the_scores_drift_on_the_calibration_images(
    tmp_path: Path,
) -> None:
    """Quantization noise raises the unknown score of images like the training images a little; the INT8 file's
    threshold moves by that drift's mean, and serving reads the threshold from the file."""
    source, inputs = source_and_inputs(detector=False)
    exported = EXPORTER.export(source, ExportFlavor.ONNX12, ExportPrecision.INT8, tmp_path)
    file = SourceModel.from_bytes(model_of(exported))
    reference = ort.InferenceSession(source.onnx_bytes, providers=["CPUExecutionProvider"])
    quantized = ort.InferenceSession(model_of(exported), providers=["CPUExecutionProvider"])
    drift = (
        quantized.run([UNKNOWN_OUTPUT], {INPUT: inputs})[0]
        - reference.run([UNKNOWN_OUTPUT], {INPUT: inputs})[0]
    )
    assert drift.mean() != 0
    assert file.unknown_threshold == exported.unknown_threshold
    assert file.unknown_threshold == pytest.approx(source.unknown_threshold + drift.mean(), abs=1e-6)
    fp16 = EXPORTER.export(source, ExportFlavor.ONNX12, ExportPrecision.FP16, tmp_path)
    assert fp16.unknown_threshold is None
    assert SourceModel.from_bytes(model_of(fp16)).unknown_threshold == source.unknown_threshold


@pytest.mark.parametrize("detector", [False, True], ids=["classifier", "detector"])
def test_int8_runs_integer_from_the_first_to_the_last_convolution(tmp_path: Path, detector: bool) -> None:
    """What makes INT8 faster than FP32 (issue 13): once ONNX Runtime has fused the file (default session options),
    no convolution is left in float and the activations are quantized once, at the input, not again between the
    convolutions. The outputs are computed in float (a quantized softmax comes out in steps of 1/255)."""
    source, _ = source_and_inputs(detector)
    exported = EXPORTER.export(source, ExportFlavor.ONNX12, ExportPrecision.INT8, tmp_path)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "fused.onnx")
    ort.InferenceSession(model_of(exported), options, providers=["CPUExecutionProvider"])
    fused = Counter(node.op_type for node in onnx.load(tmp_path / "fused.onnx").graph.node)
    assert fused["QLinearConv"] > 0 and fused["Conv"] == 0 and fused["QuantizeLinear"] == 1, fused
    graph = onnx.load_from_string(model_of(exported)).graph
    producers = {name: node.op_type for node in graph.node for name in node.output}
    assert all(producers[output.name] != "DequantizeLinear" for output in graph.output)


@pytest.mark.parametrize("detector", [False, True], ids=["classifier", "detector"])
def test_int8_weights_use_seven_bits(tmp_path: Path, detector: bool) -> None:
    """So that CPUs without VNNI, whose u8 x s8 kernels add pairs of products in 16 bits, never saturate
    (onnx_format's docstring has the measurements)."""
    source, _ = source_and_inputs(detector)
    exported = EXPORTER.export(source, ExportFlavor.ONNX12, ExportPrecision.INT8, tmp_path)
    graph = onnx.load_from_string(model_of(exported)).graph
    weights = [
        onnx.numpy_helper.to_array(tensor)
        for tensor in graph.initializer
        if tensor.data_type == onnx.TensorProto.INT8
    ]
    assert len(weights) > 10
    largest = max(int(np.abs(w.astype(np.int16)).max()) for w in weights)
    assert 32 < largest <= 64, largest  # 255 x 64 x 2 fits in 16 signed bits; and the 7 bits are used


def test_onnx10_fails_with_its_reason(tmp_path: Path) -> None:
    source, _ = source_and_inputs(detector=False)
    with pytest.raises(ExportError, match="opset 10"):
        EXPORTER.export(source, ExportFlavor.ONNX10, ExportPrecision.FP32, tmp_path)


def test_int8_needs_calibration_images(tmp_path: Path) -> None:
    source = SourceModel.from_bytes(classifier_onnx())
    with pytest.raises(ExportError, match="calibrate"):
        EXPORTER.export(source, ExportFlavor.ONNX12, ExportPrecision.INT8, tmp_path)


def test_an_export_made_before_they_were_zipped_still_reads_as_its_model() -> None:
    """Exports Seer stored as bare ONNX files (before they were zipped) stay servable by INT8 serving."""
    model = classifier_onnx()
    assert onnx_model_of_export(model) == model
