"""Predictions, stored predictions and their queries, performance and suggestions as wire shapes."""

from __future__ import annotations

from pipeline.api.mapping import Links
from pipeline.api.mapping.boxes import bounding_box, boxes_from_wire
from pipeline.api.wire.performance import IterationPerformance, TagPerformance
from pipeline.api.wire.predictions import (
    ImageIdCreateBatch,
    ImagePrediction,
    ImageRegionProposal,
    Prediction,
    PredictionQueryTag,
    PredictionQueryToken,
    RegionProposal,
    StoredImagePrediction,
    SuggestedTagAndRegion,
    UnknownImage,
)
from pipeline.services.performance import IterationMetrics
from pipeline.services.prediction import PredictionResult
from pipeline.services.stored_predictions import (
    PredictedImage,
    PredictedImageBatch,
    PredictionQuery,
    TagWindow,
)
from pipeline.services.suggestions import RegionProposals, Suggestion
from pipeline.store.records import PredictedTag, PredictionRecord, UnknownVerdict


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
        unknown=unknown_to_wire(result.unknown),
    )


def unknown_to_wire(verdict: UnknownVerdict | None) -> UnknownImage | None:
    if verdict is None:
        return None
    return UnknownImage(is_unknown=verdict.is_unknown, score=verdict.score, threshold=verdict.threshold)


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
        unknown=unknown_to_wire(prediction.unknown),
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
