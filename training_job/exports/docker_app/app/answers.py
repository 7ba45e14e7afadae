"""What the server reads and answers, shaped as the Custom Vision Prediction API v3.1 shapes them (ImageUrl,
ImagePrediction, Prediction, BoundingBox, CustomVisionError): camelCase on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class ImageUrl(WireModel):
    """POST /url's body; customvision.ai's own curl example sends `Url`."""

    url: str = Field(validation_alias=AliasChoices("url", "Url", "URL"))


class BoundingBox(WireModel):
    """Normalised to the image: 0..1 from the top-left corner."""

    left: float
    top: float
    width: float
    height: float


class Prediction(WireModel):
    probability: float
    tag_id: str
    tag_name: str
    tag_type: str
    bounding_box: BoundingBox | None = None


class UnknownVerdict(WireModel):
    """Seer's extra field: whether the image is none of the tags (its unknown score above the model's threshold)."""

    is_unknown: bool
    score: float
    threshold: float


class ImagePrediction(WireModel):
    """One image's predictions, most probable first. The model does not know its project or iteration: those
    stay empty, as in Custom Vision's exported containers. `unknown` is sent only with UNKNOWN_DETECTION on, as
    the service sends it only for projects with unknownDetection."""

    id: str = Field(default_factory=lambda: str(uuid4()))
    project: str = ""
    iteration: str = ""
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    predictions: list[Prediction]
    unknown: UnknownVerdict | None = None

    def to_json(self) -> bytes:
        leave_out = {"unknown"} if self.unknown is None else None
        return self.model_dump_json(by_alias=True, exclude=leave_out).encode()


class Health(WireModel):
    status: str = "Healthy"


class CustomVisionError(WireModel):
    code: str
    message: str


class BadInput(Exception):
    """A request the server cannot predict on; `code` is the Custom Vision error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
