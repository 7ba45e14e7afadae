"""The ONNX platform: the model as served, or converted to an older opset, in FP32, FP16 or INT8, zipped as
Custom Vision's ONNX exports are: `model.onnx` and `labels.txt` (one tag name a line, in output order).

Flavors, as Seer means them (Custom Vision's name ONNX runtime generations; Seer's models need opset 11 or later
for some detector operators, so the names cannot keep their historical opsets):
- ONNX12: the model exactly as the service serves it (opset 17 today).
- ONNX10: the model converted down to opset 10 with onnx.version_converter, for runtimes that stop there. A model
  with an operator that has no faithful opset-10 form fails with that reason rather than becoming a wrong model.

Precisions: FP16 converts weights and arithmetic to float16 with ONNX Runtime's float16 converter
(onnxruntime.transformers.float16: onnxconverter-common's copy ran for minutes on a detector's 700 nodes, this one
in 0.2 s), keeping float32 inputs and outputs, and float32 around the operators it cannot convert faithfully
(NonMaxSuppression, TopK, Cast ...).

INT8 is ONNX Runtime's static quantization (QDQ, int8 weights per channel in 7 bits, uint8 activations whose ranges are
calibrated on up to 200 of the iteration's training images: for a classifier the mean of each image's minimum and
maximum, for a detector the extremes over all images) of the convolutional trunk, after quantization.shape_inference.quant_pre_process. Measured on efficientnet-lite0 / lite2 classifiers
trained on hymenoptera/train, checked on hymenoptera/val (153 images), batch-1 CPU latency with default session options, FP32
and INT8 timed back to back on a shared 2-core AVX512-VNNI Xeon (issue 13's target: at most 0.5 points less
accurate, 1.5x faster, parity passing):
- Quantizing only Conv/MatMul/Gemm of the model as served was slower than FP32 (0.7-0.9x) and agreed on 98.0 %:
  the served graph computes each convolution's padding at run time (Shape ... Pad), which keeps Q/DQ pairs and
  float Pads and Clips between the quantized convolutions, so ONNX Runtime cannot fuse them into integer kernels.
- quant_pre_process (shape inference, constant folding, Pad fused into Conv) first, then quantizing Conv with the
  Clip/Relu (folded into the ranges) and Add between them, runs 1.6-1.9x faster than FP32 and agreed on
  99.3-100 %, accuracy 94.1 -> 94.8 % (lite0) and 96.1 -> 96.1 % (lite2).
- The nodes after the last convolution (pooling, Gemm, softmax, a detector's box decoding) stay float: quantized,
  the softmax comes out in steps of 1/255 (near-equal tags tie) and a detector's coordinates would be rounded.
- Measured with 64 images on the same recipe: QOperator format was no faster than QDQ within this machine's
  noise; per-tensor weights agreed on only 97.4 %; leaving the depthwise convolutions float was barely faster than
  FP32 (1.1x) and agreed on 98.0 %, leaving the first one float agreed on 98.7 %; reduce_range, Percentile and
  Entropy calibration (the latter two 10x slower to calibrate) and signed activations (slower than FP32) only
  changed which near-50/50 image flipped.
- 200 calibration images rather than 32 or 64: the images that INT8 flips are the ones FP32 itself puts near 50/50
  (0.46-0.51); with 200 training images lite2 kept its one such image (96.1 %, 100 % agreement), with 64 it lost it
  (95.4 %, one image of 153 is 0.65 points). A later training run's lite2 lost its 0.508 image with 200 too. Calibrating takes about 6 s (lite0) to 12 s (lite2) for 200 images.
- Ranges as the mean of each image's minimum and maximum (CalibMovingAverage) rather than the extremes over all
  images: the extremes come from a few outlier activations and spread the 255 steps wide for every image; clipping
  those few costs less. On the same trained models (200 images): lite2 mean largest difference per image 0.0028 ->
  0.0025, largest 0.107 -> 0.076, accuracy 95.4 -> 96.1 % (FP32 96.1 %, its 0.508 image kept); lite0 largest
  0.168 -> 0.160, accuracy 94.1 -> 94.8 % (FP32 94.1 %). Leaving the last 1, 2 or 4 convolutions float changed
  nothing (the error builds up along the trunk), and calibrating on the images and their mirror images neither.
  A detector's scores need the extremes: with mean ranges the fork and scissors detector's top box moved by up to
  0.48 in score (0.047 with the extremes), its objectness read from the activations that the mean clips.
- Weights in 7 bits (`reduce_range`), for CPUs without VNNI. Those figures came from a Xeon with AVX512-VNNI,
  whose integer convolutions sum u8 x s8 products in 32 bits. On x86 CPUs with AVX2 or AVX-512 but no VNNI
  (AMD EPYC before Zen 4, older Xeons: common cloud hosts), ONNX Runtime multiplies u8 activations by s8 weights
  with VPMADDUBSW, which adds pairs of products in 16 bits with saturation (its documentation's known issue;
  its remedies are reduce_range or U8U8). Measured on a 2-core AMD EPYC (Zen 3, AVX2 only), the same recipe with
  8-bit weights, one-thread latency, hymenoptera/val: lite0 94.1 -> 92.8 % (98.7 % agreement, mean largest
  difference per image 0.025, largest 0.339); with 7-bit weights 94.1 -> 94.1 % (100 %, 0.011, 0.206) at
  1.47x FP32's speed (1.50x with 8 bits). Lite2 96.1 % either way, mean difference 0.0107 -> 0.0047, largest
  0.305 -> 0.101, 1.52x. The fork and scissors detector's largest top-score difference 0.106 -> 0.080. U8U8 also
  agreed on 100 %, but ran 6.5x slower than FP32 there. The Xeon's earlier trial of reduce_range only changed
  which near-50/50 image flipped, so 7 bits cost little where VNNI is present.
Dynamic quantization (no calibration, activation ranges taken per batch at run time) also kept top-1 on the test
models, but moved outputs about twice as far (largest difference 0.26 against 0.08 on a classifier's
probabilities, 0.15 against 0.09 on a detector's scores), and its results depend on what else is in the batch."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter

from pipeline.contract.exports import ONNX_ARCHIVE_MODEL, ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.contract.onnx_model import INPUT, UNKNOWN_OUTPUT, MetadataKey
from training_job.exports.parity import run_batched
from training_job.exports.platform import LABELS_FILE, ExportedModel, ExportError, Runner, SourceModel

OLD_OPSET = 10
ARCHIVE_NAME = "onnx.zip"
CALIBRATION_IMAGES = (
    200  # all the job passes: the ranges of more images; calibrating takes 0.1-0.2 s an image
)
TRUNK_OPS = ["Conv", "Clip", "Relu", "Add"]  # the convolutional trunk; Clip and Relu fold into the ranges


def onnx_runner(model: Path | bytes) -> Runner:
    """ONNX Runtime on the file (or the serialized model), as the service runs its models (CPU)."""
    session = ort.InferenceSession(
        str(model) if isinstance(model, Path) else model, providers=["CPUExecutionProvider"]
    )

    def run(batch: np.ndarray) -> list[np.ndarray]:
        return session.run(None, {INPUT: batch.astype(np.float32, copy=False)})

    return run


def _old_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        converted = version_converter.convert_version(model, OLD_OPSET)
        onnx.checker.check_model(converted, full_check=True)
    except Exception as error:
        raise ExportError(
            f"This model cannot be expressed in ONNX opset {OLD_OPSET} ({error}); export flavor ONNX12 instead."
        ) from error
    return converted


def _float16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers import float16

    blocked = [*float16.DEFAULT_OP_BLOCK_LIST, "Cast"]
    return float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader over preprocessed images, one at a time."""

    def __init__(self, inputs: np.ndarray) -> None:
        self._batches = iter([{INPUT: inputs[i : i + 1]} for i in range(len(inputs))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _head(model: onnx.ModelProto) -> list[str]:
    """The nodes after the last convolution (graph order is topological): pooling, Gemm and softmax of a
    classifier, box decoding of a detector. They stay float: they cost little, and quantized they would round the
    outputs themselves (a softmax in uint8 steps of 1/255 ties near-equal tags)."""
    last_conv = max(i for i, node in enumerate(model.graph.node) if node.op_type == "Conv")
    return [node.name for node in model.graph.node[last_conv + 1 :]]


def _int8(
    model: onnx.ModelProto, calibration: np.ndarray | None, workdir: Path, detector: bool
) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None or not len(calibration):
        raise ExportError("INT8 needs the iteration's training images to calibrate on; none were found.")
    source, prepared, target = workdir / "fp32.onnx", workdir / "prepared.onnx", workdir / "int8.onnx"
    onnx.save(model, source)
    quant_pre_process(str(source), str(prepared))
    quantize_static(
        prepared,
        target,
        _Calibration(calibration[:CALIBRATION_IMAGES]),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,  # 7-bit weights: without VNNI, u8 x s8 products saturate (module docstring)
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=TRUNK_OPS,
        nodes_to_exclude=_head(onnx.load(prepared)),
        # a classifier's ranges: the mean of the images' minima and maxima; a detector's: their extremes
        extra_options={"CalibMovingAverage": not detector},
    )
    quantized = onnx.load(target)
    for path in (source, prepared, target):
        path.unlink()
    return quantized


def _recentre_unknown_threshold(
    source: SourceModel, quantized: onnx.ModelProto, runner: Runner
) -> float | None:
    """The quantized classifier's unknown threshold, set in its metadata: the source's, moved by the mean drift
    of the unknown score over the calibration images. Quantization noise moves an image's features away from the
    training images' a little, so its score rises by a few thousandths on images like them (0.004 on average for
    lite0 and lite2 classifiers of hymenoptera/train), and the unmoved threshold called more of them unknown.
    Measured on those models (throwaway script, the source's verdicts as the reference): on hymenoptera/val the
    INT8 verdict agreed on 98.7 % / 97.4 % of the images with the source's threshold, 100 % / 98.0 % with the moved
    one; on 92 photos of neither class 97.8 % / 100 % and 98.9 % / 100 %. `runner` runs `quantized`. None: no
    unknown score."""
    if source.unknown_threshold is None or source.calibration is None:
        return None
    inputs = source.calibration[:CALIBRATION_IMAGES]
    unknown = source.output_names.index(UNKNOWN_OUTPUT)
    drift = (
        run_batched(runner, inputs)[unknown] - run_batched(onnx_runner(source.onnx_bytes), inputs)[unknown]
    )
    threshold = source.unknown_threshold + float(drift.mean())
    [entry] = [entry for entry in quantized.metadata_props if entry.key == MetadataKey.UNKNOWN_THRESHOLD]
    entry.value = repr(threshold)
    return threshold


class OnnxExporter:
    platform = ExportPlatform.ONNX

    def export(
        self, source: SourceModel, flavor: ExportFlavor | None, precision: ExportPrecision, workdir: Path
    ) -> ExportedModel:
        model = onnx.load_from_string(source.onnx_bytes)
        if flavor == ExportFlavor.ONNX10:
            model = _old_opset(model)
        elif flavor not in (None, ExportFlavor.ONNX12):
            raise ExportError(f"ONNX has no flavor {flavor}.")
        if precision == ExportPrecision.FP16:
            model = _float16(model)
        elif precision == ExportPrecision.INT8:
            model = _int8(model, source.calibration, workdir, source.is_detector)
        runner = onnx_runner(model.SerializeToString())
        threshold = (
            _recentre_unknown_threshold(source, model, runner) if precision == ExportPrecision.INT8 else None
        )
        path = workdir / ARCHIVE_NAME
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(ONNX_ARCHIVE_MODEL, model.SerializeToString())
            archive.writestr(LABELS_FILE, source.labels_text)
        return ExportedModel(path=path, runner=runner, unknown_threshold=threshold)


EXPORTER = OnnxExporter()
