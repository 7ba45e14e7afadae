"""The cross-validation results of an iteration, as the training job stores them (`evaluation.json` beside the
model) and the performance endpoints read them back to recompute metrics at any threshold."""

from __future__ import annotations

from pydantic import BaseModel

from pipeline.core.boxes import Box
from pipeline.core.vocabulary import DomainType, TagType


class EvaluatedLabel(BaseModel):
    tag_id: str
    name: str
    type: TagType = TagType.REGULAR


class EvaluatedImage(BaseModel):
    """One training image's out-of-fold prediction: the model that scored it never saw it. Classifiers give
    `probabilities`; detectors give `detections`, to be matched against the true `regions`."""

    image_id: str
    fold: int
    truth: list[str]
    probabilities: dict[str, float] = {}
    regions: list[Box] = []
    detections: list[Box] = []


class EvaluationRecord(BaseModel):
    classification_type: str | None
    domain_type: DomainType = DomainType.CLASSIFICATION
    labels: list[EvaluatedLabel]
    images: list[EvaluatedImage]

    def dumps(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def loads(cls, data: bytes) -> EvaluationRecord:
        return cls.model_validate_json(data)
