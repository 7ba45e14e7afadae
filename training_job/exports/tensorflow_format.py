"""The TensorFlow export platform: flavor TensorFlowNormal is a zipped SavedModel, TensorFlowLite a zipped .tflite
model, each with labels.txt (one tag name a line, in output order, as Custom Vision's TensorFlow exports have it)
and a README that says what the model takes and returns. FP32 only, as Custom Vision's.

The models are NHWC, as TensorFlow models are: input `data` float32 [N, S, S, 3], RGB, 0..255 (normalised inside
the model). The runner takes the ONNX input contract (NCHW) and transposes, then runs the files as they are in the
zip: the SavedModel with TensorFlow, the .tflite model with the LiteRT interpreter (`ai-edge-litert`).

Classifiers and detectors both export (onnx_to_tensorflow says what each needs); a detector's model takes one
picture at a time, so the runners feed the batch picture by picture."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.contract.exports import SUPPORTED, ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.contract.onnx_model import (
    CLASSIFIER_OUTPUT,
    DETECTED_BOXES,
    DETECTED_CLASSES,
    DETECTED_SCORES,
    INPUT,
    MetadataKey,
)
from training_job.exports.onnx_to_tensorflow import (
    SIGNATURE,
    batch_size,
    convert_to_saved_model,
    convert_to_tflite,
)
from training_job.exports.platform import LABELS_FILE, ExportedModel, ExportError, Runner, SourceModel

SAVED_MODEL_FOLDER = "saved_model"
TFLITE_FILE = "model.tflite"
README_FILE = "README.md"


def readme_text(source: SourceModel, flavor: ExportFlavor) -> str:
    """What an offline user needs to feed the model and read its outputs."""
    files = (
        f"`{SAVED_MODEL_FOLDER}/` (a TensorFlow SavedModel)"
        if flavor is ExportFlavor.TENSORFLOW_NORMAL
        else f"`{TFLITE_FILE}` (a TensorFlow Lite model, float32)"
    )
    size, batch = source.input_size, batch_size(source) or "N"
    preprocessing = {**json.loads(source.metadata.get(MetadataKey.PREPROCESSING, "{}")), "layout": "NHWC"}
    return (
        f"# Seer export: {flavor}\n\n"
        f"Files: {files}, and `{LABELS_FILE}` (one tag name a line, in output order).\n\n"
        f"Signature `{SIGNATURE}`. Input `{INPUT}`: float32 [{batch}, {size}, {size}, 3] (NHWC), RGB, values 0..255; "
        "the model normalises them itself. Note the layout: Seer's ONNX model takes NCHW; this one takes NHWC.\n\n"
        f"Preprocessing (as Seer's service does it, then NHWC):\n\n```json\n{json.dumps(preprocessing)}\n```\n\n"
        f"Outputs, by name:\n{outputs_text(source, batch)}"
    )


def outputs_text(source: SourceModel, batch: int | str) -> str:
    if source.is_detector:
        return (
            f"- `{DETECTED_BOXES}`: float32 [{batch}, 200, 4], left, top, width, height, normalised to the picture\n"
            f"- `{DETECTED_SCORES}`: float32 [{batch}, 200], by falling value (0 pads)\n"
            f"- `{DETECTED_CLASSES}`: int64 [{batch}, 200], line indexes into `{LABELS_FILE}`\n"
        )
    return (
        f"- `{CLASSIFIER_OUTPUT}`: float32 [{batch}, {len(source.labels)}], one probability per line of "
        f"`{LABELS_FILE}` ({source.classification_type})\n"
    ) + source.unknown_text(batch)


def write_zip(path: Path, folder: Path, extra: dict[str, str]) -> Path:
    """Zip every file under `folder` (paths relative to it) plus the `extra` text files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
        for name, text in extra.items():
            archive.writestr(name, text)
    return path


def picture_by_picture(run_one: Callable[[np.ndarray], list[np.ndarray]]) -> Runner:
    """A Runner (NCHW batch in) over a model run on one NHWC picture [1, S, S, 3] at a time."""

    def run(batch: np.ndarray) -> list[np.ndarray]:
        results = [run_one(np.ascontiguousarray(picture.transpose(1, 2, 0)[np.newaxis])) for picture in batch]
        return [np.concatenate(outputs) for outputs in zip(*results, strict=True)]

    return run


def saved_model_runner(folder: Path, output_names: list[str]) -> Runner:
    import tensorflow as tf

    signature = tf.saved_model.load(str(folder)).signatures[SIGNATURE]

    def run_one(picture: np.ndarray) -> list[np.ndarray]:
        outputs = signature(**{INPUT: tf.constant(picture)})
        return [outputs[name].numpy() for name in output_names]

    return picture_by_picture(run_one)


def tflite_runner(path: Path, output_names: list[str]) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    signature = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)

    def run_one(picture: np.ndarray) -> list[np.ndarray]:
        outputs = signature(**{INPUT: picture})
        return [outputs[name] for name in output_names]

    return picture_by_picture(run_one)


class TensorFlowExporter:
    platform = ExportPlatform.TENSORFLOW

    def export(
        self, source: SourceModel, flavor: ExportFlavor | None, precision: ExportPrecision, workdir: Path
    ) -> ExportedModel:
        flavor = flavor or SUPPORTED[self.platform].flavors[0]
        if flavor not in SUPPORTED[self.platform].flavors:
            raise ExportError(f"TensorFlow has no flavor {flavor}: use TensorFlowNormal or TensorFlowLite.")
        if precision is not ExportPrecision.FP32:
            raise ExportError(f"TensorFlow exports are FP32 only, not {precision}.")
        content = workdir / "content"
        content.mkdir()
        saved_model = convert_to_saved_model(source, workdir)
        if flavor is ExportFlavor.TENSORFLOW_NORMAL:
            saved_model.rename(content / SAVED_MODEL_FOLDER)
        else:
            convert_to_tflite(saved_model, content / TFLITE_FILE)
        extra = {LABELS_FILE: source.labels_text, README_FILE: readme_text(source, flavor)}
        archive = write_zip(workdir / f"{flavor}.zip", content, extra)
        return ExportedModel(
            path=archive, runner=unzipped_runner(archive, workdir / "unzipped", source, flavor)
        )


def unzipped_runner(archive: Path, folder: Path, source: SourceModel, flavor: ExportFlavor) -> Runner:
    """A runner of the files as a user gets them: the zip is unpacked and run from there."""
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(folder)
    if flavor is ExportFlavor.TENSORFLOW_NORMAL:
        return saved_model_runner(folder / SAVED_MODEL_FOLDER, source.output_names)
    return tflite_runner(folder / TFLITE_FILE, source.output_names)


EXPORTER = TensorFlowExporter()
