"""Iterations, training parameters and performance on the wire."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pipeline.api.wire.base import OmitsUnset, WireModel


class CustomBaseModelInfo(WireModel):
    """The trained iteration a new one starts from (v3.4-preview; Seer also takes and reports it on v3.3). Both
    ids are uuids, as the spec declares them (anything else is BadRequestInvalid, never a storage key)."""

    project_id: UUID
    iteration_id: UUID


class WarmStart(WireModel):
    """Seer's extra field on an iteration trained from a base (the SDK ignores it): what the run reused."""

    reused_features: int
    computed_features: int
    head: bool
    backbone: bool
    timings: dict[str, float]


class TrainingParameters(WireModel):
    selected_tags: list[str] | None = None
    custom_base_model_info: CustomBaseModelInfo | None = None


class IterationCalibration(WireModel):
    """Seer's extension on a classifier iteration (the SDK ignores it): the temperature folded into its model,
    the expected calibration error of its out-of-fold probabilities before and after it, the threshold above
    which a prediction's unknown score says "none of the tags", and the share of its training images above it
    out of fold."""

    temperature: float
    expected_calibration_error_before: float
    expected_calibration_error_after: float
    unknown_threshold: float
    unknown_training_rate: float


class Iteration(OmitsUnset, WireModel):
    """An unpublished iteration has no publish name or resource: the spec's strings are non-nullable, so they are
    left out until it is published. Seer's `calibration` is left out where there is none (detectors, iterations
    not trained or trained before it was kept)."""

    omitted_when_unset = (
        "publish_name",
        "original_publish_resource_id",
        "publish_decision",
        "champion_iteration_id",
        "champion_score",
        "challenger_score",
        "calibration",
        "warm_start",
        "training_device",
        "serving_precision",
    )

    id: str
    name: str
    status: str
    created: datetime
    last_modified: datetime
    trained_at: datetime | None = None
    project_id: str
    exportable: bool
    exportable_to: list[str] = []
    domain_id: str
    classification_type: str | None = None
    training_type: str
    reserved_budget_in_hours: int
    training_time_in_minutes: int = 0
    publish_name: str | None = None
    original_publish_resource_id: str | None = None
    custom_base_model_info: CustomBaseModelInfo | None = None
    training_error_details: str | None = None
    # Seer's extensions (the SDK ignores them; left out while unset): whether the timer asked for the iteration,
    # and for a scheduled retrain of a project with `publishBetterRetrains`, what became of it (Published,
    # KeptChampion or NoChampion), the published iteration it was compared with and both out-of-fold scores
    # (mean average precision on the same images and folds).
    scheduled: bool = False
    publish_decision: str | None = None
    champion_iteration_id: str | None = None
    champion_score: float | None = None
    challenger_score: float | None = None
    calibration: IterationCalibration | None = None
    warm_start: WarmStart | None = None
    training_device: str | None = None  # "cpu" or "cuda (<GPU>)": what trained it
    serving_precision: str | None = None  # INT8 while published in Seer's INT8 serving mode


class IterationUpdate(WireModel):
    """The PATCH body: the SDK sends a whole Iteration; only the name can change."""

    name: str | None = None
