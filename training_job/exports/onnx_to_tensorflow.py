"""ONNX -> TensorFlow: the iteration's ONNX model as a SavedModel, and that SavedModel as a .tflite model.

The converter is onnx2tf (PINTO0309/onnx2tf): maintained (several releases a month), it maps ONNX ops onto
plain TensorFlow ops and turns NCHW models into NHWC ones, so the result runs on TFLite's fast kernels, with no
ONNX runtime inside. The older onnx-tf has had no release since 2022 and keeps NCHW with transposes around every
convolution. onnx2tf 1.28.8 is pinned: it is the last release whose wheel declares no exact dependency pins (1.29
pins numpy 1.26, onnx 1.19, tensorflow 2.19 and protobuf 4, which clash with the service's pins); it runs here with
tensorflow 2.21, numpy 2.4 and onnx 1.23.

What onnx2tf needs from Seer's models, each measured on the test models:
- ONNX Runtime folds the constants first: the 'same' padding of the EfficientNet blocks arrives from torch as shape
  arithmetic that onnx2tf mistranslates; ONNX shape inference then types every tensor.
- Detectors get a batch of 1: their FPN Resize takes its size from Shape arithmetic on the batch, which only folds
  when the batch is fixed. Classifiers keep a dynamic batch.
- TopK's K becomes a scalar: onnx2tf calls int() on it, which numpy 2 refuses for a 1-element array.
- ReduceMax over a 3-D tensor keeps its ONNX axes (a parameter replacement): onnx2tf takes the detector's square
  [288, 288] overlap matrix for a transposed NCW tensor and reduces the wrong axis.
- onnx2tf looks for its sample pictures in the working folder and downloads them when a model has a fixed batch;
  the conversion runs in the export's folder with synthetic ones there, so it never touches the network.

The SavedModel has one signature, `serving_default`: input `data`, float32 [N, S, S, 3] (NHWC, RGB, 0..255; N is 1
for detectors), and one output per ONNX output under the ONNX output's name. The .tflite model keeps it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from pipeline.contract.onnx_model import INPUT
from training_job.exports.platform import ExportError, SourceModel

SIGNATURE = "serving_default"
# The file onnx2tf reads from the working folder before it would download it (20 pictures, 128 px, RGB, 0..1).
SAMPLE_PICTURES = "calibration_image_sample_data_20x128x128x3_float32.npy"


def batch_size(source: SourceModel) -> int | None:
    """The converted model's batch: 1 for detectors, dynamic (None) for classifiers."""
    return 1 if source.is_detector else None


def folded_onnx(source: SourceModel, path: Path) -> onnx.ModelProto:
    """The source model with its constants folded by ONNX Runtime (written to `path`) and every tensor typed."""
    model = onnx.load_from_string(source.onnx_bytes)
    if batch_size(source) is not None:
        for tensor in [*model.graph.input, *model.graph.output]:
            tensor.type.tensor_type.shape.dim[0].dim_value = batch_size(source)
        del model.graph.value_info[:]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return onnx.shape_inference.infer_shapes(onnx.load(str(path)))


def with_scalar_top_k(model: onnx.ModelProto) -> onnx.ModelProto:
    """K of every TopK as a 0-d constant (see the module docstring)."""
    constants = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "TopK" and node.input[1] in constants:
            k = constants[node.input[1]]
            k.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(k).reshape(()), k.name))
    return model


def reduce_max_replacements(model: onnx.ModelProto) -> dict:
    """onnx2tf parameter replacements that keep the ONNX axes of every ReduceMax over a 3-D tensor."""
    ranks = {info.name: len(info.type.tensor_type.shape.dim) for info in model.graph.value_info}
    operations = [
        {
            "op_name": node.name,
            "param_target": "attributes",
            "param_name": "axes",
            "values": list(attribute.ints),
        }
        for node in model.graph.node
        if node.op_type == "ReduceMax" and ranks.get(node.input[0]) == 3
        for attribute in node.attribute
        if attribute.name == "axes"
    ]
    return {"format_version": 1, "operations": operations}


def sample_pictures() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.0, 1.0, (20, 128, 128, 3)).astype(np.float32)


def convert_to_saved_model(source: SourceModel, workdir: Path) -> Path:
    """Convert the source model into a SavedModel folder under `workdir`; ExportError when onnx2tf cannot."""
    import onnx2tf
    import tensorflow as tf

    model = with_scalar_top_k(folded_onnx(source, workdir / "folded.onnx"))
    replacements = workdir / "replacements.json"
    replacements.write_text(json.dumps(reduce_max_replacements(model)))
    np.save(workdir / SAMPLE_PICTURES, sample_pictures())
    try:
        with contextlib.chdir(workdir):  # process-wide: the export job converts one model at a time
            keras_model = onnx2tf.convert(
                onnx_graph=model,
                output_folder_path=str(workdir / "onnx2tf"),
                param_replacement_file=str(replacements),
                not_use_onnxsim=True,
                disable_model_save=True,
                non_verbose=True,
            )
    except (Exception, SystemExit) as error:  # onnx2tf ends with sys.exit(1) on an op it cannot convert
        raise ExportError(f"onnx2tf could not convert this model to TensorFlow: {error!r}") from error

    size, names = source.input_size, source.output_names

    @tf.function(input_signature=[tf.TensorSpec([batch_size(source), size, size, 3], tf.float32, name=INPUT)])
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
