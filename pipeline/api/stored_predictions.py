"""Stored predictions in the Training API: QueryPredictions, DeletePrediction, CreateImagesFromPredictions."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse

from pipeline.api.deps import account, csv_list, settings
from pipeline.api.image_wire import create_summary
from pipeline.api.wire.images import ImageCreateSummary
from pipeline.api.wire.predictions import (
    BoundingBox,
    ImageIdCreateBatch,
    Prediction,
    PredictionQueryResult,
    PredictionQueryToken,
    StoredImagePrediction,
)
from pipeline.core.settings import Settings
from pipeline.services import stored_predictions as service
from pipeline.store import StorageAccount
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import PredictionRecord

router = APIRouter(tags=["predictions"])


def to_wire(store: PredictionStore, prediction: PredictionRecord) -> StoredImagePrediction:
    return StoredImagePrediction(
        id=prediction.id,
        project=prediction.project_id,
        iteration=prediction.iteration_id,
        created=prediction.created,
        domain=prediction.domain_id,
        resized_image_uri=store.blob_url(prediction.resized_blob),
        thumbnail_uri=store.blob_url(prediction.thumbnail_blob),
        original_image_uri=store.blob_url(prediction.original_blob),
        predictions=[
            Prediction(
                probability=p.probability,
                tag_id=p.tag_id,
                tag_name=p.tag_name,
                tag_type=p.tag_type,
                bounding_box=None
                if p.left is None
                else BoundingBox(left=p.left, top=p.top, width=p.width, height=p.height),
            )
            for p in prediction.predictions
        ],
    )


@router.post("/projects/{project_id}/predictions/query", response_model=PredictionQueryResult)
def query_predictions(
    project_id: str,
    query: PredictionQueryToken = Body(...),
    storage: StorageAccount = Depends(account),
) -> PredictionQueryResult:
    page, token = service.query_predictions(storage, project_id, query)
    store = PredictionStore(storage)
    return PredictionQueryResult(token=token, results=[to_wire(store, p) for p in page])


@router.delete("/projects/{project_id}/predictions", status_code=204, response_class=Response)
def delete_prediction(
    project_id: str, ids: str | None = Query(None), storage: StorageAccount = Depends(account)
) -> Response:
    service.delete_predictions(storage, project_id, csv_list(ids))
    return Response(status_code=204)


@router.post("/projects/{project_id}/images/predictions", response_model=ImageCreateSummary)
def create_images_from_predictions(
    project_id: str,
    batch: ImageIdCreateBatch = Body(...),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> JSONResponse:
    results = service.create_images_from_predictions(storage, config, project_id, batch)
    return create_summary(storage, project_id, results)
