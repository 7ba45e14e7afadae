"""GetImageRegionProposals and SuggestTagsAndRegions: labelling help from the project's own model; and
QuerySuggestedImages and QuerySuggestedImageCount over the suggestions SuggestTagsAndRegions stored."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query

from pipeline.api.deps import Engine, ImageIds, Storage
from pipeline.api.mapping.predictions import proposals_to_wire, suggestion_to_wire
from pipeline.api.mapping.suggestions import (
    suggested_image_to_wire,
    suggested_query_from_wire,
    suggested_query_to_wire,
    tag_threshold_from_wire,
)
from pipeline.api.wire.predictions import ImageRegionProposal, SuggestedTagAndRegion
from pipeline.api.wire.suggestions import (
    SuggestedTagAndRegionQuery,
    SuggestedTagAndRegionQueryToken,
    TagFilter,
)
from pipeline.services import suggested_images
from pipeline.services import suggestions as service
from pipeline.services.images_query import image_links

router = APIRouter(tags=["suggestions"])


@router.post("/projects/{project_id}/images/{image_id}/regionproposals", response_model=ImageRegionProposal)
def get_image_region_proposals(project_id: str, image_id: str, engine: Engine) -> ImageRegionProposal:
    return proposals_to_wire(service.region_proposals(engine, project_id, image_id))


@router.post("/projects/{project_id}/tagsandregions/suggestions", response_model=list[SuggestedTagAndRegion])
def suggest_tags_and_regions(
    project_id: str, engine: Engine, image_ids: ImageIds, iteration_id: str = Query(..., alias="iterationId")
) -> list[SuggestedTagAndRegion]:
    suggestions = service.suggest_tags_and_regions(engine, project_id, iteration_id, image_ids)
    return [suggestion_to_wire(s) for s in suggestions]


@router.post("/projects/{project_id}/images/suggested", response_model=SuggestedTagAndRegionQuery)
def query_suggested_images(
    project_id: str,
    storage: Storage,
    iteration_id: str = Query(..., alias="iterationId"),
    query: SuggestedTagAndRegionQueryToken = Body(...),
) -> SuggestedTagAndRegionQuery:
    page, following = suggested_images.query_suggested_images(
        storage, project_id, iteration_id, suggested_query_from_wire(query)
    )
    links = image_links(storage)
    return SuggestedTagAndRegionQuery(
        token=suggested_query_to_wire(following), results=[suggested_image_to_wire(s, links) for s in page]
    )


@router.post("/projects/{project_id}/images/suggested/count", response_model=dict[str, int])
def query_suggested_image_count(
    project_id: str,
    storage: Storage,
    iteration_id: str = Query(..., alias="iterationId"),
    query: TagFilter = Body(...),
) -> dict[str, int]:
    return suggested_images.count_suggested_images(
        storage, project_id, iteration_id, tag_threshold_from_wire(query)
    )
