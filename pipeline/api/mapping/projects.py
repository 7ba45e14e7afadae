"""Domains, projects, tags and iterations as wire shapes."""

from __future__ import annotations

from uuid import UUID

from pipeline.api.mapping.exports import platforms_in
from pipeline.api.wire.iterations import CustomBaseModelInfo, Iteration, IterationCalibration, WarmStart
from pipeline.api.wire.projects import (
    Domain,
    ImageProcessingSettings,
    ModelInformation,
    Project,
    ProjectSettings,
    Tag,
)
from pipeline.contract.detection import DETECTION
from pipeline.core.augmentation import augmentation_methods
from pipeline.core.domains import DomainInfo, domain_of
from pipeline.core.vocabulary import DomainType, IterationStatus
from pipeline.store.records import (
    CalibrationRecord,
    IterationRecord,
    ProjectRecord,
    TagRecord,
)


def domain_to_wire(domain: DomainInfo) -> Domain:
    return Domain(
        id=domain.id,
        name=domain.name,
        type=domain.type,
        exportable=domain.compact,
        enabled=True,
        exportable_platforms=domain.export_platforms,
        model_information=ModelInformation(description=domain.description),
    )


def project_to_wire(project: ProjectRecord, thumbnail_uri: str | None) -> Project:
    """Detectors train without a negative set (a Negative tag is refused), classifiers with the images tagged
    Negative; `detectionParameters` is the detector's fixed parameters as JSON, empty for a classifier."""
    detector = domain_of(project.domain_id).type == DomainType.OBJECT_DETECTION
    return Project(
        id=project.id,
        name=project.name,
        description=project.description,
        settings=ProjectSettings(
            domain_id=project.domain_id,
            classification_type=project.classification_type,
            target_export_platforms=project.target_export_platforms,
            use_negative_set=not detector,
            detection_parameters=DETECTION.describe() if detector else "",
            image_processing_settings=ImageProcessingSettings(
                augmentation_methods=augmentation_methods(project.augmentation_methods)
            ),
            export_model_container_uri=project.export_model_container_uri,
            notification_queue_uri=project.notification_queue_uri,
            publish_better_retrains=project.publish_better_retrains,
            unknown_detection=project.unknown_detection,
        ),
        created=project.created,
        last_modified=project.last_modified,
        thumbnail_uri=thumbnail_uri,
        status="Importing" if project.importing_since else "Succeeded",
    )


def tag_to_wire(tag: TagRecord, image_count: int) -> Tag:
    return Tag(id=tag.id, name=tag.name, description=tag.description, type=tag.type, image_count=image_count)


def iteration_to_wire(iteration: IterationRecord, version: str) -> Iteration:
    """A Completed iteration is exportable to every platform Seer exports that `version` can name. The base it
    started from is `customBaseModelInfo` (v3.4-preview's field; an extra one on v3.3, which the SDK ignores),
    and what the run reused from it Seer's extra `warmStart`; the device that trained it is Seer's extra
    `trainingDevice`."""
    completed = iteration.status == IterationStatus.COMPLETED
    platforms = [platform.value for platform in platforms_in(version)] if completed else []
    return Iteration(
        id=iteration.id,
        name=iteration.name,
        status=iteration.status,
        created=iteration.created,
        last_modified=iteration.last_modified,
        trained_at=iteration.trained_at,
        project_id=iteration.project_id,
        exportable=bool(platforms),
        exportable_to=platforms,
        domain_id=iteration.domain_id,
        classification_type=iteration.classification_type,
        training_type=iteration.training_type,
        reserved_budget_in_hours=iteration.reserved_budget_in_hours,
        training_time_in_minutes=iteration.training_time_in_minutes or 0,
        publish_name=iteration.publish_name,
        original_publish_resource_id=iteration.original_publish_resource_id,
        training_error_details=iteration.training_error_details,
        scheduled=iteration.scheduled,
        publish_decision=iteration.publish_decision,
        champion_iteration_id=iteration.champion_iteration_id,
        champion_score=iteration.champion_score,
        challenger_score=iteration.challenger_score,
        calibration=calibration_to_wire(iteration.calibration),
        custom_base_model_info=CustomBaseModelInfo(
            project_id=UUID(iteration.base_project_id), iteration_id=UUID(iteration.base_iteration_id)
        )
        if iteration.base_project_id and iteration.base_iteration_id
        else None,
        warm_start=WarmStart(**iteration.warm_start.model_dump()) if iteration.warm_start else None,
        training_device=iteration.training_device,
        serving_precision=iteration.serving_precision,
    )


def calibration_to_wire(calibration: CalibrationRecord | None) -> IterationCalibration | None:
    if calibration is None:
        return None
    return IterationCalibration(
        temperature=calibration.temperature,
        expected_calibration_error_before=calibration.ece_before,
        expected_calibration_error_after=calibration.ece_after,
        unknown_threshold=calibration.unknown_threshold,
        unknown_training_rate=calibration.unknown_training_rate,
    )
