"""ONNX -> TensorFlow: the iteration's ONNX model as a SavedModel, and that SavedModel as a .tflite model.

The converter is onnx2tf (PINTO0309/onnx2tf): maintained (several releases a month), it maps ONNX ops onto
plain TensorFlow ops and turns NCHW models into NHWC ones, so the result runs on TFLite's fast kernels, with no
ONNX runtime inside. The older onnx-tf has had no release since 2022 and keeps NCHW with transposes around every
convolution. onnx2tf 1.28.8 is pinned: it is the last release whose wheel declares no exact dependency pins (1.29
pins numpy 1.26, onnx 1.19, tensorflow 2.19 and protobuf 4, which clash with the service's pins); it runs here with
tensorflow 2.21, numpy 2.4 and onnx 1.23.

Before onnx2tf sees the model, ONNX Runtime folds its constants (the 'same' padding of the EfficientNet blocks
arrives from torch as shape arithmetic that onnx2tf mistranslates) and ONNX shape inference types every tensor.
The batch dimension stays dynamic; that also keeps onnx2tf from downloading its sample pictures, which it only
does for a fixed batch. onnxsim is not used (onnx2tf would run it as a separate program).

The SavedModel has one signature, `serving_default`: input `data`, float32 [N, S, S, 3] (NHWC, RGB, 0..255), and
one output per ONNX output under the ONNX output's name. The .tflite model is converted from it and keeps it."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import onnxruntime as ort

from pipeline.contract.onnx_model import INPUT
from training_job.exports.platform import ExportError, SourceModel

logger = logging.getLogger(__name__)

SIGNATURE = "serving_default"


def folded_onnx(source: SourceModel, path: Path) -> Path:
    """Write the source model with its constants folded by ONNX Runtime and every tensor typed, ready for onnx2tf."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(source.onnx_bytes, options, providers=["CPUExecutionProvider"])
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(path))), str(path))
    return path


def convert_to_saved_model(source: SourceModel, workdir: Path) -> Path:
    """Convert the source model into a SavedModel folder under `workdir`; ExportError when onnx2tf cannot."""
    import onnx2tf
    import tensorflow as tf

    prepared = folded_onnx(source, workdir / "prepared.onnx")
    try:
        keras_model = onnx2tf.convert(
            input_onnx_file_path=str(prepared),
            output_folder_path=str(workdir / "onnx2tf"),
            not_use_onnxsim=True,
            disable_model_save=True,
            non_verbose=True,
        )
    except (Exception, SystemExit) as error:  # onnx2tf ends with sys.exit(1) on an op it cannot convert
        raise ExportError(f"onnx2tf could not convert this model to TensorFlow: {error!r}") from error

    size = source.input_size
    names = source.output_names

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT)])
    def serve(data: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = keras_model(data)
        return dict(zip(names, outputs if isinstance(outputs, list | tuple) else [outputs], strict=True))

    module = tf.Module()
    module.weights = (
        keras_model.weights
    )  # tracked alone: saving the Keras model itself costs ~25 s of tracing
    saved_model = workdir / "saved_model"
    tf.saved_model.save(module, str(saved_model), signatures={SIGNATURE: serve})
    return saved_model


def convert_to_tflite(saved_model: Path, path: Path) -> Path:
    """Write the SavedModel as a float32 .tflite model that keeps its signature."""
    import tensorflow as tf

    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert())
    return path
