"""Predictions on the wire: the Prediction API's ImagePrediction, stored predictions and their queries."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pipeline.api.wire.base import AnswerModel, OmitsUnset, UtcDatetime, WireModel
from pipeline.api.wire.images import Region
from pipeline.core.vocabulary import Order, TagType


class BoundingBox(AnswerModel):
    """Normalised to the image: 0..1 from the top-left corner."""

    left: float
    top: float
    width: float
    height: float


class Prediction(AnswerModel):
    probability: float
    tag_id: str
    tag_name: str
    bounding_box: BoundingBox | None = None
    tag_type: str = TagType.REGULAR


class UnknownImage(AnswerModel):
    """Seer's extension (the SDK ignores it): with the project's `unknownDetection` on, whether the image is none
    of the tags, i.e. its unknown score (1 - cosine similarity to the k-th nearest training image, in the model's
    pooled features) is above the iteration's threshold."""

    is_unknown: bool
    score: float
    threshold: float


class ImagePrediction(OmitsUnset, AnswerModel):
    """`unknown` is present only with the project's unknownDetection on and a model that scores it."""

    omitted_when_unset = ("unknown",)

    id: str
    project: str
    iteration: str
    created: datetime
    predictions: list[Prediction]
    unknown: UnknownImage | None = None


class ImageUrl(WireModel):
    url: str


class StoredImagePrediction(ImagePrediction):
    resized_image_uri: str
    thumbnail_uri: str
    original_image_uri: str
    domain: str


class PredictionQueryTag(WireModel):
    id: str
    min_threshold: float = 0.0
    max_threshold: float = 1.0


class PredictionQueryToken(OmitsUnset, WireModel):
    """The query and, once answered, its continuation: the client sends the returned token back for more. The
    spec's strings here are non-nullable, so one left unset (no filter by application, no further page) is left
    out: `continuation` is present only while there is more to read."""

    omitted_when_unset = ("session", "continuation", "application")

    session: str | None = None
    continuation: str | None = None
    max_count: int = Field(default=50, ge=0)  # over MAX_PAGE_SIZE: the spec's own code, from the service
    order_by: str = Order.NEWEST
    tags: list[PredictionQueryTag] | None = None
    iteration_id: str | None = None
    start_time: UtcDatetime | None = None
    end_time: UtcDatetime | None = None
    application: str | None = None


class PredictionQueryResult(WireModel):
    token: PredictionQueryToken
    results: list[StoredImagePrediction]


class ImageIdCreateEntry(WireModel):
    id: str
    tag_ids: list[str] | None = None
    regions: list[Region] | None = None


class ImageIdCreateBatch(WireModel):
    images: list[ImageIdCreateEntry]
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class RegionProposal(WireModel):
    confidence: float
    bounding_box: BoundingBox


class ImageRegionProposal(WireModel):
    project_id: str
    image_id: str
    proposals: list[RegionProposal]


class SuggestedTagAndRegion(WireModel):
    """`id` is the image's id; `prediction_uncertainty` is 1 minus the most probable prediction's probability."""

    id: str
    project: str
    iteration: str
    created: datetime
    predictions: list[Prediction]
    prediction_uncertainty: float
