"""The exported model under ONNX Runtime, answering as Seer's Prediction API does (pipeline/services/prediction.py):
classifiers score every tag, detectors give the boxes the model kept (score above 0), both most probable first.

The tensor names and the metadata's `labels` entry are those Seer writes into every exported model
(pipeline/contract/onnx_model.py); `preprocessing.py` beside this file is Seer's own, added at export time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from answers import BoundingBox, Prediction, UnknownVerdict
from PIL import Image
from preprocessing import preprocess, preprocess_full

CLASSIFIER_OUTPUT = "model_outputs"
DETECTED_BOXES = "detected_boxes"
DETECTED_SCORES = "detected_scores"
DETECTED_CLASSES = "detected_classes"
UNKNOWN_OUTPUT = "unknown_score"  # a classifier's: above the metadata's `unknown_threshold`, none of the tags
UNKNOWN_THRESHOLD = "unknown_threshold"


class Model:
    """One ONNX Runtime session (safe to run from several threads at once) and the tags it scores."""

    def __init__(self, path: Path) -> None:
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.labels: list[dict[str, str]] = json.loads(metadata["labels"])
        [model_input] = self.session.get_inputs()
        self.input_name = model_input.name
        self.input_size = int(model_input.shape[-1])
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.is_detector = CLASSIFIER_OUTPUT not in self.output_names
        threshold = metadata.get(UNKNOWN_THRESHOLD)
        self.unknown_threshold = (
            float(threshold) if threshold and UNKNOWN_OUTPUT in self.output_names else None
        )

    def predict(self, image: Image.Image) -> tuple[list[Prediction], UnknownVerdict | None]:
        """The predictions, most probable first, and the unknown verdict (None: the model has no unknown score,
        as detectors and older classifiers have none)."""
        if self.is_detector:
            return _by_probability(self._detect(image)), None
        outputs = self._run(preprocess(image, self.input_size))
        predictions = [self._prediction(index, p) for index, p in enumerate(outputs[CLASSIFIER_OUTPUT])]
        verdict = None
        if self.unknown_threshold is not None:
            score = float(outputs[UNKNOWN_OUTPUT])
            verdict = UnknownVerdict(
                is_unknown=score > self.unknown_threshold, score=score, threshold=self.unknown_threshold
            )
        return _by_probability(predictions), verdict

    def _run(self, tensor: np.ndarray) -> dict[str, list]:
        outputs = self.session.run(None, {self.input_name: tensor[None]})
        return {name: output[0].tolist() for name, output in zip(self.output_names, outputs, strict=True)}

    def _prediction(self, index: int, probability: float, box: BoundingBox | None = None) -> Prediction:
        label = self.labels[index]
        return Prediction(
            probability=probability,
            tag_id=label["tag_id"],
            tag_name=label["name"],
            tag_type=label.get("type", "Regular"),
            bounding_box=box,
        )

    def _detect(self, image: Image.Image) -> list[Prediction]:
        """The model decodes and suppresses boxes itself: normalised left, top, width, height by falling score,
        padded with score 0."""
        outputs = self._run(preprocess_full(image, self.input_size))
        return [
            self._prediction(int(index), score, BoundingBox(left=left, top=top, width=width, height=height))
            for (left, top, width, height), score, index in zip(
                outputs[DETECTED_BOXES], outputs[DETECTED_SCORES], outputs[DETECTED_CLASSES], strict=True
            )
            if score > 0
        ]


def _by_probability(predictions: list[Prediction]) -> list[Prediction]:
    return sorted(predictions, key=lambda p: p.probability, reverse=True)
