"""The detector's fixed parameters: trained and exported into every detection model by the training job, and
reported by the service as a detection project's `settings.detectionParameters` (a string in the spec, which
leaves its content to the service: Seer's is this object as compact JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class DetectionParameters:
    stride: int = 16  # the grid every location of which predicts a box
    max_detections: int = 200  # Custom Vision returns at most 200 boxes per image
    candidates: int = 400  # (location, tag) pairs entering suppression
    nms_iou: float = 0.5  # a box overlapping a better one of its tag by more goes (Advanced tunes its own)
    nms_rounds: int = 4  # Cluster-NMS iterations (see training_job.detector)
    min_score: float = 0.01  # boxes below this are dropped inside the model

    def describe(self) -> str:
        return json.dumps(
            {to_camel(name): value for name, value in asdict(self).items()}, separators=(",", ":")
        )


DETECTION = DetectionParameters()
