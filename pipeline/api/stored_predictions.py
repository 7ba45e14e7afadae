"""Stored predictions in the Training API: QueryPredictions, DeletePrediction, CreateImagesFromPredictions."""

from __future__ import annotations

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse

from pipeline.api.deps import Config, PredictionIds, Storage
from pipeline.api.mapping.images import ImageWire
from pipeline.api.mapping.predictions import (
    predicted_images_from_wire,
    query_from_wire,
    query_to_wire,
    stored_prediction_to_wire,
)
from pipeline.api.wire.images import ImageCreateSummary
from pipeline.api.wire.predictions import ImageIdCreateBatch, PredictionQueryResult, PredictionQueryToken
from pipeline.services import stored_predictions as service
from pipeline.services.images_query import image_links
from pipeline.services.tags import tag_names

router = APIRouter(tags=["predictions"])


@router.post("/projects/{project_id}/predictions/query", response_model=PredictionQueryResult)
def query_predictions(
    project_id: str, storage: Storage, query: PredictionQueryToken = Body(...)
) -> PredictionQueryResult:
    page, following = service.query_predictions(storage, project_id, query_from_wire(query))
    links = service.prediction_links(storage)
    return PredictionQueryResult(
        token=query_to_wire(following), results=[stored_prediction_to_wire(p, links) for p in page]
    )


@router.delete("/projects/{project_id}/predictions", status_code=204, response_class=Response)
def delete_prediction(project_id: str, storage: Storage, ids: PredictionIds) -> Response:
    service.delete_predictions(storage, project_id, ids)
    return Response(status_code=204)


@router.post("/projects/{project_id}/images/predictions", response_model=ImageCreateSummary)
def create_images_from_predictions(
    project_id: str, storage: Storage, config: Config, batch: ImageIdCreateBatch = Body(...)
) -> JSONResponse:
    results = service.create_images_from_predictions(
        storage, config, project_id, predicted_images_from_wire(batch)
    )
    return ImageWire(image_links(storage), tag_names(storage, project_id)).create_summary(results)
