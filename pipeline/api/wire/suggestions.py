"""QuerySuggestedImages' and QuerySuggestedImageCount's shapes: SuggestedTagAndRegionQueryToken, its answer
SuggestedTagAndRegionQuery of StoredSuggestedTagAndRegion, and TagFilter."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pipeline.api.wire.base import OmitsUnset, WireModel
from pipeline.api.wire.predictions import Prediction
from pipeline.core.limits import MAX_PAGE_SIZE
from pipeline.core.vocabulary import SuggestionOrder


class TagFilter(WireModel):
    """No tagIds: every tag of the project. The threshold is required (a probability, 0 to 1)."""

    tag_ids: list[str] | None = None
    threshold: float = Field(ge=0.0, le=1.0)


class SuggestedTagAndRegionQueryToken(TagFilter, OmitsUnset):
    """The query and, once answered, its continuation: the client sends the returned token back for the next page.
    `session` and `continuation` are non-nullable strings, so an unset one is left out: `continuation` is present
    only while there is more to read; so are tagIds when none were given. sortBy defaults to the most uncertain
    first. `labelFirst` (Seer's extension, absent unless sent; the official SDK neither sends nor reads it): true
    orders the images by what labelling them would teach the model (uncertainty and diversity, see the README)
    instead of sortBy, and is echoed in the token for the next page."""

    omitted_when_unset = ("tag_ids", "session", "continuation", "label_first")

    session: str | None = None
    continuation: str | None = None
    max_count: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    sort_by: str = SuggestionOrder.UNCERTAINTY_DESCENDING
    label_first: bool | None = None


class StoredSuggestedTagAndRegion(WireModel):
    """`id` is the image's id (as SuggestTagsAndRegions' answer has it); `prediction_uncertainty` is 1 minus the
    most probable prediction's probability."""

    width: int
    height: int
    resized_image_uri: str
    thumbnail_uri: str
    original_image_uri: str
    domain: str
    id: str
    project: str
    iteration: str
    created: datetime
    predictions: list[Prediction]
    prediction_uncertainty: float


class SuggestedTagAndRegionQuery(WireModel):
    token: SuggestedTagAndRegionQueryToken
    results: list[StoredSuggestedTagAndRegion]
