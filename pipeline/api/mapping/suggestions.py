"""Suggested-image queries between the wire and services/suggested_images.py."""

from __future__ import annotations

from pipeline.api.mapping import Links
from pipeline.api.mapping.predictions import prediction_to_wire
from pipeline.api.wire.suggestions import (
    StoredSuggestedTagAndRegion,
    SuggestedTagAndRegionQueryToken,
    TagFilter,
)
from pipeline.services.suggested_images import SuggestedImage, SuggestedImageQuery, TagThreshold


def tag_threshold_from_wire(body: TagFilter) -> TagThreshold:
    return TagThreshold(tag_ids=tuple(body.tag_ids or ()), threshold=body.threshold)


def suggested_query_from_wire(token: SuggestedTagAndRegionQueryToken) -> SuggestedImageQuery:
    return SuggestedImageQuery(
        filter=tag_threshold_from_wire(token),
        max_count=token.max_count,
        sort_by=token.sort_by,
        session=token.session,
        continuation=token.continuation,
        label_first=bool(token.label_first),
    )


def suggested_query_to_wire(query: SuggestedImageQuery) -> SuggestedTagAndRegionQueryToken:
    return SuggestedTagAndRegionQueryToken(
        tag_ids=list(query.filter.tag_ids) or None,
        threshold=query.filter.threshold,
        session=query.session,
        continuation=query.continuation,
        max_count=query.max_count,
        sort_by=query.sort_by,
        label_first=query.label_first or None,
    )


def suggested_image_to_wire(found: SuggestedImage, links: Links) -> StoredSuggestedTagAndRegion:
    suggestion, image = found.suggestion, found.image
    return StoredSuggestedTagAndRegion(
        width=image.width,
        height=image.height,
        resized_image_uri=links(image.resized_blob),
        thumbnail_uri=links(image.thumbnail_blob),
        original_image_uri=links(image.original_blob),
        domain=found.domain_id,
        id=image.id,
        project=suggestion.project_id,
        iteration=suggestion.iteration_id,
        created=suggestion.created,
        predictions=[prediction_to_wire(p) for p in suggestion.predictions],
        prediction_uncertainty=suggestion.uncertainty,
    )
