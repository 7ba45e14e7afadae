"""The exported model under ONNX Runtime, answering as Seer's Prediction API does (pipeline/services/prediction.py):
classifiers score every tag, detectors give the boxes the model kept (score above 0), both most probable first.

The tensor names and the metadata's `labels` entry are those Seer writes into every exported model
(pipeline/contract/onnx_model.py); `preprocessing.py` beside this file is Seer's own, added at export time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from answers import BoundingBox, Prediction
from PIL import Image
from preprocessing import preprocess, preprocess_full

CLASSIFIER_OUTPUT = "model_outputs"
DETECTED_BOXES = "detected_boxes"
DETECTED_SCORES = "detected_scores"
DETECTED_CLASSES = "detected_classes"


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

    def predict(self, image: Image.Image) -> list[Prediction]:
        predictions = self._detect(image) if self.is_detector else self._classify(image)
        return sorted(predictions, key=lambda p: p.probability, reverse=True)

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

    def _classify(self, image: Image.Image) -> list[Prediction]:
        probabilities = self._run(preprocess(image, self.input_size))[CLASSIFIER_OUTPUT]
        return [self._prediction(index, p) for index, p in enumerate(probabilities)]

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
