"""Seer's vocabulary: every closed set of names Custom Vision defines, as StrEnums, with the one
case-insensitive parser and the one id generator. A value of these enums is also its wire spelling."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TypeVar

from pipeline.core.errors import bad_request

E = TypeVar("E", bound=StrEnum)


class IterationStatus(StrEnum):
    TRAINING = "Training"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ExportStatus(StrEnum):
    EXPORTING = "Exporting"
    DONE = "Done"
    FAILED = "Failed"


class TagType(StrEnum):
    REGULAR = "Regular"
    NEGATIVE = "Negative"
    GENERAL_PRODUCT = "GeneralProduct"  # the one "any product" tag of a retail shelf detector


class ClassificationType(StrEnum):
    MULTICLASS = "Multiclass"
    MULTILABEL = "Multilabel"


class TrainingType(StrEnum):
    REGULAR = "Regular"
    ADVANCED = "Advanced"


class PublishDecision(StrEnum):
    """What a scheduled retrain of a project with `publishBetterRetrains` did with its new iteration (Seer's)."""

    PUBLISHED = "Published"  # it scored better than the published iteration and took its name
    KEPT_CHAMPION = "KeptChampion"  # it did not score better: the published iteration stays
    NO_CHAMPION = "NoChampion"  # nothing was published to compare with: nothing changed


class Order(StrEnum):
    NEWEST = "Newest"
    OLDEST = "Oldest"


class PredictionOrder(StrEnum):
    """QueryPredictions' orders: GetImages' two and Suggested (the predictions most worth labelling first)."""

    NEWEST = "Newest"
    OLDEST = "Oldest"
    SUGGESTED = "Suggested"


class SuggestionOrder(StrEnum):
    """QuerySuggestedImages' orders, by the stored suggestion's uncertainty."""

    UNCERTAINTY_ASCENDING = "UncertaintyAscending"
    UNCERTAINTY_DESCENDING = "UncertaintyDescending"


class TaggingStatus(StrEnum):
    ALL = "All"
    TAGGED = "Tagged"
    UNTAGGED = "Untagged"


class DomainType(StrEnum):
    CLASSIFICATION = "Classification"
    OBJECT_DETECTION = "ObjectDetection"


class ImageCreateStatus(StrEnum):
    """Per-image outcome of an image batch (the spec's ImageCreateStatus)."""

    OK = "OK"
    OK_DUPLICATE = "OKDuplicate"
    ERROR_SOURCE = "ErrorSource"
    ERROR_IMAGE_FORMAT = "ErrorImageFormat"
    ERROR_IMAGE_SIZE = "ErrorImageSize"
    ERROR_STORAGE = "ErrorStorage"
    ERROR_LIMIT_EXCEED = "ErrorLimitExceed"
    ERROR_TAG_LIMIT_EXCEED = "ErrorTagLimitExceed"
    ERROR_REGION_LIMIT_EXCEED = "ErrorRegionLimitExceed"
    ERROR_UNKNOWN = "ErrorUnknown"
    ERROR_NEGATIVE_AND_REGULAR_TAG = "ErrorNegativeAndRegularTagOnSameImage"
    ERROR_IMAGE_DIMENSIONS = "ErrorImageDimensions"
    ERROR_INVALID_TAG = "ErrorInvalidTag"  # a tag id the project does not have (v3.4-preview's enum)

    @property
    def succeeded(self) -> bool:
        return self in (ImageCreateStatus.OK, ImageCreateStatus.OK_DUPLICATE)


class MetadataUpdateStatus(StrEnum):
    """Per-image outcome of UpdateImageMetadata (the spec's ImageMetadataUpdateStatus)."""

    OK = "OK"
    ERROR_IMAGE_NOT_FOUND = "ErrorImageNotFound"
    ERROR_LIMIT_EXCEED = "ErrorLimitExceed"


def parse_choice(
    enum: type[E], value: str | None, name: str, *, default: E | None = None, code: str = "BadRequest"
) -> E:
    """The member whose value equals `value` ignoring case (Custom Vision accepts `newest`, `MULTICLASS`, ...);
    `default` when `value` is empty; else the Custom Vision error `code` naming the allowed values."""
    if not value and default is not None:
        return default
    match = next((member for member in enum if member.value.lower() == (value or "").lower()), None)
    if match is None:
        allowed = ", ".join(member.value for member in enum)
        raise bad_request(code, f"{name} must be one of {allowed}, not {value!r}.")
    return match


def new_id() -> str:
    """A new lower-case GUID: the id of every project, tag, image, region, iteration and prediction."""
    return str(uuid.uuid4())
