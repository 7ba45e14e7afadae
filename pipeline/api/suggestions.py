"""GetImageRegionProposals and SuggestTagsAndRegions: labelling help from the project's own detector."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from pipeline.api.deps import csv_list, predictor
from pipeline.api.wire.predictions import ImageRegionProposal, SuggestedTagAndRegion
from pipeline.services import suggestions as service
from pipeline.services.prediction import Predictor

router = APIRouter(tags=["suggestions"])


@router.post("/projects/{project_id}/images/{image_id}/regionproposals", response_model=ImageRegionProposal)
def get_image_region_proposals(
    project_id: str, image_id: str, engine: Predictor = Depends(predictor)
) -> ImageRegionProposal:
    return service.region_proposals(engine, project_id, image_id)


@router.post("/projects/{project_id}/tagsandregions/suggestions", response_model=list[SuggestedTagAndRegion])
def suggest_tags_and_regions(
    project_id: str,
    iteration_id: str = Query(..., alias="iterationId"),
    image_ids: str | None = Query(None, alias="imageIds"),
    engine: Predictor = Depends(predictor),
) -> list[SuggestedTagAndRegion]:
    return service.suggest_tags_and_regions(engine, project_id, iteration_id, csv_list(image_ids))
