"""The one place where records and service results become Custom Vision wire shapes, and wire boxes become
`Box`es. Routers call these; services never see a wire model."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi.responses import JSONResponse

from pipeline.api.wire.base import WireModel
from pipeline.api.wire.images import (
    Image,
    ImageCreateResult,
    ImageCreateSummary,
    ImageMetadataUpdateEntry,
    ImageMetadataUpdateSummary,
    ImageRegion,
    ImageRegionCreateEntry,
    ImageRegionCreateResult,
    ImageRegionCreateSummary,
    ImageTag,
    ImageTagCreateEntry,
    ImageTagCreateSummary,
    Region,
)
from pipeline.api.wire.iterations import Iteration
from pipeline.api.wire.performance import ImagePerformance, IterationPerformance, TagPerformance
from pipeline.api.wire.predictions import (
    BoundingBox,
    ImageIdCreateBatch,
    ImagePrediction,
    ImageRegionProposal,
    Prediction,
    PredictionQueryTag,
    PredictionQueryToken,
    RegionProposal,
    StoredImagePrediction,
    SuggestedTagAndRegion,
)
from pipeline.api.wire.projects import Domain, ModelInformation, Project, ProjectSettings, Tag
from pipeline.core.domains import DomainInfo, domain_of
from pipeline.core.vocabulary import IterationStatus, MetadataUpdateStatus
from pipeline.services.images_create import CreateResult
from pipeline.services.images_edit import MetadataResult, RegionEdits, TagEdits
from pipeline.services.performance import ImageResult, IterationMetrics
from pipeline.services.prediction import ImagePrediction as PredictionResult
from pipeline.services.stored_predictions import (
    PredictedImage,
    PredictedImageBatch,
    PredictionQuery,
    TagWindow,
)
from pipeline.services.suggestions import RegionProposals, Suggestion
from pipeline.store.records import (
    ImageRecord,
    IterationRecord,
    PredictedTag,
    PredictionRecord,
    ProjectRecord,
    RegionRecord,
    TagRecord,
)
from pipeline.vision.boxes import Box

Links = Callable[[str], str]  # blob name -> time-limited read-only URL


def multi_status(body: WireModel, ok: bool) -> JSONResponse:
    """200 when every item succeeded, else 207 Multi-Status (same body shape)."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=200 if ok else 207)


# --- into the services ---------------------------------------------------------------------------------------


def box_from_wire(region: Region | ImageRegionCreateEntry) -> Box:
    return Box(region.tag_id.lower(), region.left, region.top, region.width, region.height)


def boxes_from_wire(regions: list[Region] | None) -> tuple[Box, ...]:
    return tuple(box_from_wire(r) for r in regions or ())


def query_from_wire(token: PredictionQueryToken) -> PredictionQuery:
    return PredictionQuery(
        session=token.session,
        continuation=token.continuation,
        max_count=token.max_count,
        order_by=token.order_by,
        tags=tuple(TagWindow(t.id, t.min_threshold, t.max_threshold) for t in token.tags or ()),
        iteration_id=token.iteration_id,
        start_time=token.start_time,
        end_time=token.end_time,
        application=token.application,
    )


def predicted_images_from_wire(batch: ImageIdCreateBatch) -> PredictedImageBatch:
    return PredictedImageBatch(
        images=[
            PredictedImage(
                prediction_id=entry.id,
                tag_ids=tuple(t.lower() for t in entry.tag_ids or ()),
                regions=boxes_from_wire(entry.regions),
            )
            for entry in batch.images
        ],
        tag_ids=[t.lower() for t in batch.tag_ids or ()],
        metadata=batch.metadata or {},
    )


# --- domains, projects, tags, iterations ---------------------------------------------------------------------


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


def project_to_wire(project: ProjectRecord) -> Project:
    return Project(
        id=project.id,
        name=project.name,
        description=project.description,
        settings=ProjectSettings(
            domain_id=project.domain_id,
            classification_type=project.classification_type,
            target_export_platforms=project.target_export_platforms,
            use_negative_set=True,
            export_model_container_uri=project.export_model_container_uri,
            notification_queue_uri=project.notification_queue_uri,
        ),
        created=project.created,
        last_modified=project.last_modified,
    )


def tag_to_wire(tag: TagRecord, image_count: int) -> Tag:
    return Tag(id=tag.id, name=tag.name, description=tag.description, type=tag.type, image_count=image_count)


def iteration_to_wire(iteration: IterationRecord) -> Iteration:
    completed = iteration.status == IterationStatus.COMPLETED
    platforms = domain_of(iteration.domain_id).export_platforms if completed else []
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
        training_time_in_minutes=iteration.training_time_in_minutes,
        publish_name=iteration.publish_name,
        original_publish_resource_id=iteration.original_publish_resource_id,
        training_error_details=iteration.training_error_details,
    )


# --- images --------------------------------------------------------------------------------------------------


def region_to_wire(region: RegionRecord, names: Mapping[str, str]) -> ImageRegion:
    return ImageRegion(
        region_id=region.id,
        tag_name=names.get(region.tag_id, ""),
        created=region.created,
        tag_id=region.tag_id,
        left=region.left,
        top=region.top,
        width=region.width,
        height=region.height,
    )


class ImageWire:
    """Image records as wire Images: tag names, and read-only SAS URLs for the blobs."""

    def __init__(self, links: Links, tag_names: Mapping[str, str]) -> None:
        self.links = links
        self.names = tag_names

    def image(self, image: ImageRecord) -> Image:
        return Image(
            id=image.id,
            created=image.created,
            width=image.width,
            height=image.height,
            resized_image_uri=self.links(image.resized_blob),
            thumbnail_uri=self.links(image.thumbnail_blob),
            original_image_uri=self.links(image.original_blob),
            tags=[
                ImageTag(tag_id=t.tag_id, tag_name=self.names.get(t.tag_id, ""), created=t.created)
                for t in image.tags
            ],
            regions=[region_to_wire(r, self.names) for r in image.regions],
            metadata=image.metadata,
        )

    def images(self, images: list[ImageRecord]) -> list[Image]:
        return [self.image(i) for i in images]

    def create_summary(self, results: list[CreateResult]) -> JSONResponse:
        summary = ImageCreateSummary(
            is_batch_successful=all(r.status.succeeded for r in results),
            images=[
                ImageCreateResult(
                    source_url=r.source, status=r.status, image=self.image(r.image) if r.image else None
                )
                for r in results
            ],
        )
        return multi_status(summary, summary.is_batch_successful)

    def performance(self, result: ImageResult) -> ImagePerformance:
        image = self.image(result.image)
        return ImagePerformance(
            predictions=[prediction_to_wire(p) for p in result.predictions],
            id=image.id,
            created=image.created,
            width=image.width,
            height=image.height,
            image_uri=image.resized_image_uri,
            thumbnail_uri=image.thumbnail_uri,
            tags=image.tags,
            regions=image.regions,
        )


def tag_edits_to_wire(edits: TagEdits) -> ImageTagCreateSummary:
    def entries(pairs: list[tuple[str, str]]) -> list[ImageTagCreateEntry]:
        return [ImageTagCreateEntry(image_id=i, tag_id=t) for i, t in pairs]

    return ImageTagCreateSummary(
        created=entries(edits.created), duplicated=entries(edits.duplicated), exceeded=entries(edits.exceeded)
    )


def region_edits_to_wire(edits: RegionEdits, names: Mapping[str, str]) -> JSONResponse:
    def entries(pairs: list[tuple[str, Box]]) -> list[ImageRegionCreateEntry]:
        return [
            ImageRegionCreateEntry(
                image_id=i, tag_id=r.tag_id, left=r.left, top=r.top, width=r.width, height=r.height
            )
            for i, r in pairs
        ]

    summary = ImageRegionCreateSummary(
        created=[
            ImageRegionCreateResult(image_id=i, **region_to_wire(r, names).model_dump())
            for i, r in edits.created
        ],
        duplicated=entries(edits.duplicated),
        exceeded=entries(edits.exceeded),
    )
    return multi_status(summary, not (edits.duplicated or edits.exceeded))


def metadata_results_to_wire(results: list[MetadataResult]) -> JSONResponse:
    summary = ImageMetadataUpdateSummary(
        is_batch_successful=all(r.status == MetadataUpdateStatus.OK for r in results),
        images=[
            ImageMetadataUpdateEntry(image_id=r.image_id, status=r.status, metadata=r.metadata)
            for r in results
        ],
    )
    return multi_status(summary, summary.is_batch_successful)


# --- predictions and performance -----------------------------------------------------------------------------


def bounding_box(prediction: PredictedTag) -> BoundingBox | None:
    if prediction.left is None:
        return None
    return BoundingBox(
        left=prediction.left, top=prediction.top, width=prediction.width, height=prediction.height
    )


def prediction_to_wire(prediction: PredictedTag) -> Prediction:
    return Prediction(
        probability=prediction.probability,
        tag_id=prediction.tag_id,
        tag_name=prediction.tag_name,
        tag_type=prediction.tag_type,
        bounding_box=bounding_box(prediction),
    )


def image_prediction_to_wire(result: PredictionResult) -> ImagePrediction:
    return ImagePrediction(
        id=result.id,
        project=result.project_id,
        iteration=result.iteration_id,
        created=result.created,
        predictions=[prediction_to_wire(p) for p in result.predictions],
    )


def stored_prediction_to_wire(prediction: PredictionRecord, links: Links) -> StoredImagePrediction:
    return StoredImagePrediction(
        id=prediction.id,
        project=prediction.project_id,
        iteration=prediction.iteration_id,
        created=prediction.created,
        domain=prediction.domain_id,
        resized_image_uri=links(prediction.resized_blob),
        thumbnail_uri=links(prediction.thumbnail_blob),
        original_image_uri=links(prediction.original_blob),
        predictions=[prediction_to_wire(p) for p in prediction.predictions],
    )


def query_to_wire(query: PredictionQuery) -> PredictionQueryToken:
    return PredictionQueryToken(
        session=query.session,
        continuation=query.continuation,
        max_count=query.max_count,
        order_by=query.order_by,
        tags=[PredictionQueryTag(id=t.tag_id, min_threshold=t.low, max_threshold=t.high) for t in query.tags]
        or None,
        iteration_id=query.iteration_id,
        start_time=query.start_time,
        end_time=query.end_time,
        application=query.application,
    )


def performance_to_wire(metrics: IterationMetrics) -> IterationPerformance:
    performance = metrics.performance
    return IterationPerformance(
        per_tag_performance=[
            TagPerformance(
                id=tag.tag_id,
                name=metrics.tag_names[tag.tag_id],
                precision=tag.precision.value,
                precision_std_deviation=tag.precision.std_deviation,
                recall=tag.recall.value,
                recall_std_deviation=tag.recall.std_deviation,
                average_precision=tag.average_precision,
            )
            for tag in performance.per_tag
        ],
        precision=performance.precision.value,
        precision_std_deviation=performance.precision.std_deviation,
        recall=performance.recall.value,
        recall_std_deviation=performance.recall.std_deviation,
        average_precision=performance.average_precision,
    )


def proposals_to_wire(proposals: RegionProposals) -> ImageRegionProposal:
    return ImageRegionProposal(
        project_id=proposals.project_id,
        image_id=proposals.image_id,
        proposals=[
            RegionProposal(confidence=p.probability, bounding_box=bounding_box(p))
            for p in proposals.proposals
        ],
    )


def suggestion_to_wire(suggestion: Suggestion) -> SuggestedTagAndRegion:
    return SuggestedTagAndRegion(
        id=suggestion.image_id,
        project=suggestion.project_id,
        iteration=suggestion.iteration_id,
        created=suggestion.created,
        predictions=[prediction_to_wire(p) for p in suggestion.predictions],
        prediction_uncertainty=suggestion.uncertainty,
    )
