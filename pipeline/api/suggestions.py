"""GetImageRegionProposals and SuggestTagsAndRegions: labelling help from the project's own detector."""

from __future__ import annotations

from fastapi import APIRouter, Query

from pipeline.api.deps import Engine, ImageIds
from pipeline.api.mapping.predictions import proposals_to_wire, suggestion_to_wire
from pipeline.api.wire.predictions import ImageRegionProposal, SuggestedTagAndRegion
from pipeline.services import suggestions as service

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
