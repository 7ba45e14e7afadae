"""What Seer stores, as pydantic records (snake_case). Wire shapes live in `pipeline.api.wire`."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from pipeline.core.boxes import Box
from pipeline.core.vocabulary import (
    ClassificationType,
    ExportStatus,
    IterationStatus,
    PublishDecision,
    TagType,
    TrainingType,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProjectRecord(BaseModel):
    id: str
    name: str
    description: str = ""
    domain_id: str
    classification_type: ClassificationType | None = None
    target_export_platforms: list[str] = Field(default_factory=list)
    notification_queue_uri: str | None = None
    export_model_container_uri: str | None = None
    # imageProcessingSettings.augmentationMethods as last set (pipeline.core.augmentation); None: the defaults.
    augmentation_methods: dict[str, bool] | None = None
    # Seer's: a scheduled retrain replaces the published iteration only when it scores better (training_job/champion).
    publish_better_retrains: bool = False
    thumbnail_blob: str | None = None  # the newest image's thumbnail: the project's `thumbnailUri`
    training_iteration_id: str | None = (
        None  # the iteration that claimed training last (see services.training)
    )
    created: datetime = Field(default_factory=utcnow)
    last_modified: datetime = Field(default_factory=utcnow)
    # Set first by DeleteProject: from then on the project is not found, and the sweeper finishes a deletion that a
    # crash interrupted (see services.sweeper).
    deleting_since: datetime | None = None
    # Set while ImportProject fills the project (its status is Importing), with the importing process: the sweeper
    # deletes an import that its process left unfinished (see services.project_import).
    importing_since: datetime | None = None
    importing_owner: str | None = None
    # Seer's `unknownDetection` setting: predictions say when an image is none of the tags (UnknownVerdict).
    unknown_detection: bool = False

    @property
    def deleting(self) -> bool:
        return self.deleting_since is not None


class TagRecord(BaseModel):
    id: str
    project_id: str
    name: str
    description: str = ""
    type: TagType = TagType.REGULAR
    created: datetime = Field(default_factory=utcnow)


class ImageTagRecord(BaseModel):
    tag_id: str
    created: datetime = Field(default_factory=utcnow)


class RegionRecord(BaseModel):
    id: str
    tag_id: str
    left: float
    top: float
    width: float
    height: float
    created: datetime = Field(default_factory=utcnow)


class ImageRecord(BaseModel):
    id: str
    project_id: str
    width: int
    height: int
    content_hash: str
    original_blob: str
    resized_blob: str
    thumbnail_blob: str
    tags: list[ImageTagRecord] = Field(default_factory=list)
    regions: list[RegionRecord] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    created: datetime = Field(default_factory=utcnow)
    # Creation order in the project (pipeline.store.image_index); None only on rows not yet indexed.
    seq: int | None = None

    @property
    def tag_ids(self) -> set[str]:
        """Tags of the image, whether attached whole-image or through a region."""
        return {t.tag_id for t in self.tags} | {r.tag_id for r in self.regions}


class CalibrationRecord(BaseModel):
    """A classifier iteration's calibration (the temperature folded into its model, and the expected calibration
    error of its out-of-fold probabilities before and after it) and its unknown score's threshold, with the share
    of training images above it out of fold (training_job.calibration, training_job.unknown)."""

    temperature: float
    ece_before: float
    ece_after: float
    unknown_threshold: float
    unknown_training_rate: float


class WarmStartRecord(BaseModel):
    """What a run that started from a base iteration (TrainProject's customBaseModelInfo) took from it: images
    whose backbone features were reused or computed, whether the head and the fine-tuned backbone started from the
    base's, and the run's seconds per phase."""

    reused_features: int = 0
    computed_features: int = 0
    head: bool = False
    backbone: bool = False
    timings: dict[str, float] = Field(default_factory=dict)


class IterationRecord(BaseModel):
    id: str
    project_id: str
    name: str
    status: IterationStatus = IterationStatus.TRAINING
    domain_id: str
    classification_type: ClassificationType | None = None
    training_type: TrainingType = TrainingType.REGULAR
    reserved_budget_in_hours: int = 0
    selected_tag_ids: list[str] = Field(default_factory=list)
    training_set_fingerprint: str
    # Images per tag in the training set, for GetTags?iterationId; None on rows written before it was kept.
    tag_image_counts: dict[str, int] | None = None
    # The project's labelled tally when training was asked for (scheduled retraining counts from it); None on
    # rows written before it was kept.
    labelled_mark: int | None = None
    notification_email_address: str | None = None  # TrainProject's: mailed when the run ends
    # The project's augmentation methods when training was asked for (None: the defaults).
    augmentation_methods: dict[str, bool] | None = None
    scheduled: bool = False  # asked for by the retraining timer, not by a user
    # A scheduled retrain's outcome when its project publishes better retrains: the decision, the published
    # iteration it was compared with and both out-of-fold scores on the same images (training_job/champion).
    publish_decision: PublishDecision | None = None
    champion_iteration_id: str | None = None
    champion_score: float | None = None
    challenger_score: float | None = None
    created: datetime = Field(default_factory=utcnow)
    last_modified: datetime = Field(default_factory=utcnow)
    trained_at: datetime | None = None
    training_time_in_minutes: int | None = None
    training_error_details: str | None = None
    publish_name: str | None = None
    original_publish_resource_id: str | None = None
    model_blob: str | None = None
    evaluation_blob: str | None = None
    calibration: CalibrationRecord | None = None  # classifiers trained since it was kept
    # TrainProject's customBaseModelInfo: the Completed iteration (of this or another project) it starts from.
    base_project_id: str | None = None
    base_iteration_id: str | None = None
    warm_start: WarmStartRecord | None = None  # set by the training job of a run with a base
    training_device: str | None = None  # what trained it: "cpu" or "cuda (<GPU>)"; None before it was kept
    # Seer's INT8 serving mode (PublishIteration's `precision=INT8`, compact domains): the published iteration is
    # served by its Done ONNX INT8 export, this blob of the exports container. None: the model as trained.
    serving_precision: str | None = None
    serving_blob: str | None = None


class PredictedTag(BaseModel):
    tag_id: str
    tag_name: str
    probability: float
    tag_type: TagType = TagType.REGULAR
    left: float | None = None
    top: float | None = None
    width: float | None = None
    height: float | None = None

    def box(self) -> Box | None:
        """A detector's prediction as the one box type (None for a classifier's)."""
        if self.left is None or self.top is None or self.width is None or self.height is None:
            return None
        return Box(self.tag_id, self.left, self.top, self.width, self.height, self.probability)


class UnknownVerdict(BaseModel):
    """Whether an image is none of the model's tags: its unknown score against the model's threshold."""

    is_unknown: bool
    score: float
    threshold: float


class PredictionRecord(BaseModel):
    id: str
    project_id: str
    iteration_id: str
    domain_id: str
    application: str | None = None
    predictions: list[PredictedTag] = Field(default_factory=list)
    original_blob: str
    resized_blob: str
    thumbnail_blob: str
    width: int
    height: int
    created: datetime = Field(default_factory=utcnow)
    unknown: UnknownVerdict | None = None  # with the project's unknownDetection on, for models that score it


class SuggestionRecord(BaseModel):
    """SuggestTagsAndRegions' answer for one image from one iteration, kept for QuerySuggestedImages: the tags
    (a detector's: tagged boxes) the iteration predicted and `uncertainty`, 1 minus the most probable one's
    probability."""

    project_id: str
    iteration_id: str
    image_id: str
    predictions: list[PredictedTag] = Field(default_factory=list)
    uncertainty: float
    created: datetime = Field(default_factory=utcnow)
    # a classifier's features for this image (pipeline.vision.active_learning.encode_embedding), which the
    # labelFirst order compares images by; None for a detector
    embedding: str | None = None


def export_key(iteration_id: str, platform: str, flavor: str | None, precision: str) -> str:
    """The row key of one kind of export of an iteration (`exports` table)."""
    return f"{iteration_id}.{platform}.{flavor or '-'}.{precision}"


class ExportRecord(BaseModel):
    """One kind of export of an iteration: `platform`, `flavor` and `precision` are the values of
    pipeline.contract.exports' enums."""

    project_id: str
    iteration_id: str
    platform: str
    flavor: str | None = None
    precision: str
    status: ExportStatus = ExportStatus.EXPORTING
    request_id: str  # the request being served (pipeline.contract.export_request.ExportMessage)
    reason: str | None = None  # why it Failed
    # The file of the run that ended Done (set after it is written); kept while the same kind is exported again,
    # so that the sweeper, which removes the export files no row names and no iteration serves, leaves it.
    blob: str | None = None
    # The parity check's figures (training_job.exports.parity.ParityReport), for Done and for a failed check.
    parity: dict[str, float | int | str] | None = None
    requested: datetime = Field(default_factory=utcnow)
    finished: datetime | None = None

    @property
    def row_key(self) -> str:
        return export_key(self.iteration_id, self.platform, self.flavor, self.precision)
