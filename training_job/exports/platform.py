"""What every export platform implements: turn the iteration's ONNX model into one downloadable file, and, where
the result runs on Linux, a runner the export job compares with the service (`training_job.exports.parity`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
import onnx.utils

from pipeline.contract.detection import DETECTION
from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.contract.onnx_model import (
    CLASSIFIER_OUTPUT,
    INPUT,
    UNKNOWN_OUTPUT,
    MetadataKey,
    ModelLabel,
    decode_labels,
)
from training_job.queue_job import FailNow

LABELS_FILE = "labels.txt"

# Runs the exported model on a batch shaped like the ONNX input (float32 [N, 3, S, S], RGB, 0..255, from
# pipeline.vision.preprocessing) and returns the ONNX model's outputs, in its output order and layout.
Runner = Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class SourceModel:
    """The iteration's model as the service serves it (pipeline.contract.onnx_model). `calibration`: some of the
    iteration's training images as model inputs, for exporters that calibrate (INT8); the export job sets it."""

    onnx_bytes: bytes
    metadata: dict[str, str]
    labels: list[ModelLabel]
    input_size: int
    output_names: list[str]
    calibration: np.ndarray | None = None

    @property
    def is_detector(self) -> bool:
        return CLASSIFIER_OUTPUT not in self.output_names

    @classmethod
    def from_bytes(cls, data: bytes) -> SourceModel:
        model = onnx.load_from_string(data)
        metadata = {entry.key: entry.value for entry in model.metadata_props}
        [graph_input] = [i for i in model.graph.input if i.name == INPUT]
        size = graph_input.type.tensor_type.shape.dim[-1].dim_value
        return cls(
            onnx_bytes=data,
            metadata=metadata,
            labels=decode_labels(metadata),
            input_size=int(size),
            output_names=[output.name for output in model.graph.output],
        )

    @property
    def labels_text(self) -> str:
        """`labels.txt` as every export ships it: one tag name a line, in output order."""
        return "".join(f"{label.name}\n" for label in self.labels)

    @property
    def unknown_threshold(self) -> float | None:
        """The score above which the classifier calls an image none of its tags; None without an unknown score."""
        threshold = self.metadata.get(MetadataKey.UNKNOWN_THRESHOLD)
        return None if threshold is None else float(threshold)

    @property
    def nms_iou(self) -> float:
        """A detector's suppression overlap (Advanced training tunes it; older models carry the default's)."""
        return float(json.loads(self.metadata.get(MetadataKey.NMS_IOU, json.dumps(DETECTION.nms_iou))))

    @property
    def classification_type(self) -> str:
        return self.metadata.get(MetadataKey.CLASSIFICATION_TYPE, "null")

    def without_unknown_score(self) -> SourceModel:
        """The classifier with its probabilities as its only output (and no metadata about the unknown score),
        for platforms whose classifier form has no room for another output; the model itself if it has none."""
        if UNKNOWN_OUTPUT not in self.output_names:
            return self
        model = onnx.load_from_string(self.onnx_bytes)
        pruned = onnx.utils.Extractor(model).extract_model([INPUT], [CLASSIFIER_OUTPUT])
        dropped = {MetadataKey.UNKNOWN_THRESHOLD, MetadataKey.OUTPUTS}
        metadata = {key: value for key, value in self.metadata.items() if key not in dropped}
        del pruned.metadata_props[:]
        for key, value in metadata.items():
            pruned.metadata_props.add(key=key, value=value)
        return replace(
            self, onnx_bytes=pruned.SerializeToString(), metadata=metadata, output_names=[CLASSIFIER_OUTPUT]
        )

    def unknown_text(self, batch: int | str = "N") -> str:
        """A README line for the unknown score, for models that have one (empty otherwise)."""
        if UNKNOWN_OUTPUT not in self.output_names:
            return ""
        threshold = self.metadata.get(MetadataKey.UNKNOWN_THRESHOLD, "?")
        return (
            f"- `{UNKNOWN_OUTPUT}` float32 [{batch}]: how unlike the training images the picture is (1 - cosine "
            f"similarity of its features to the 5th nearest training image's); above {threshold} (metadata "
            f"`{MetadataKey.UNKNOWN_THRESHOLD}`) it is none of the tags\n"
        )


@dataclass(frozen=True)
class ExportedModel:
    """The file offered for download, and how to run what it holds (None: it cannot run here, e.g. Core ML on
    Linux; the platform checked the file itself instead)."""

    path: Path
    runner: Runner | None
    # The file's own unknown threshold, where it is not the source's (ONNX INT8 moves it).
    unknown_threshold: float | None = None


def unknown_thresholds(source: SourceModel, exported: ExportedModel) -> tuple[float, float] | None:
    """The source's unknown threshold and the export's, for a classifier with an unknown score."""
    if source.unknown_threshold is None:
        return None
    own = exported.unknown_threshold
    return source.unknown_threshold, source.unknown_threshold if own is None else own


class Exporter(Protocol):
    platform: ExportPlatform

    def export(
        self, source: SourceModel, flavor: ExportFlavor | None, precision: ExportPrecision, workdir: Path
    ) -> ExportedModel:
        """Write the export under `workdir` (a fresh temporary folder). Raise ExportError with a reason a user can
        act on when this model cannot be exported this way."""
        ...


class ExportError(FailNow):
    """The export cannot be made (the reason ends up in the export's status; no retry can change it)."""
