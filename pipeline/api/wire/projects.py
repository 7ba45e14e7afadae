"""Domains, projects and tags on the wire."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pipeline.api.wire.base import WireModel


class ModelInformation(WireModel):
    estimated_model_size_in_megabytes: int | None = None
    description: str | None = None


class Domain(WireModel):
    id: str
    name: str
    type: str
    exportable: bool
    enabled: bool = True
    exportable_platforms: list[str] = []
    model_information: ModelInformation | None = None


class ImageProcessingSettings(WireModel):
    augmentation_methods: dict[str, bool] | None = None


class ProjectSettings(WireModel):
    domain_id: str | None = None
    classification_type: str | None = None
    target_export_platforms: list[str] | None = None
    use_negative_set: bool | None = None
    detection_parameters: str | None = None
    image_processing_settings: ImageProcessingSettings | None = None
    export_model_container_uri: str | None = None
    notification_queue_uri: str | None = None
    # Seer's extension (the SDK ignores it): a scheduled retrain replaces the published iteration, under the same
    # publish name and prediction resource, only when it scores better out of fold on the same images.
    publish_better_retrains: bool | None = None
    # Seer's extension (the SDK ignores it and sends none back, which changes nothing): predictions add
    # `unknown`, whether the image is none of the tags (README, "Unknown images").
    unknown_detection: bool | None = None


class Project(WireModel):
    id: str
    name: str
    description: str
    settings: ProjectSettings
    created: datetime
    last_modified: datetime
    thumbnail_uri: str | None = None
    dr_mode_enabled: bool = False
    status: str = "Succeeded"


class ProjectUpdate(WireModel):
    """The PATCH body: the SDK sends the whole Project, read-only fields included; only these are applied."""

    name: str | None = None
    description: str | None = None
    settings: ProjectSettings | None = None


class CreateProjectOptions(WireModel):
    export_model_container_uri: str | None = None
    notification_queue_uri: str | None = None


class Tag(WireModel):
    id: str
    name: str
    description: str
    type: str
    image_count: int


class TagUpdate(WireModel):
    name: str | None = None
    description: str | None = None
    type: str | None = None


class ProjectExport(WireModel):
    iteration_count: int
    image_count: int
    tag_count: int
    region_count: int
    estimated_import_time_in_ms: int = Field(alias="estimatedImportTimeInMS")
    token: str
