"""PublishIteration / UnpublishIteration."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from pipeline.api.deps import Engine, Storage
from pipeline.services import publishing as service

router = APIRouter(tags=["publishing"])

PUBLISH = "/projects/{project_id}/iterations/{iteration_id}/publish"


@router.post(PUBLISH, response_model=bool)
def publish_iteration(
    project_id: str,
    iteration_id: str,
    storage: Storage,
    engine: Engine,
    publish_name: str = Query(..., alias="publishName"),
    prediction_id: str = Query(..., alias="predictionId"),
    overwrite: bool = Query(False),
    precision: str | None = Query(None),
) -> bool:
    """Seer's `precision` (FP32, the default, or INT8: compact domains, from the iteration's Done ONNX INT8 export)
    is its serving mode; the SDK never sends it."""
    service.publish_iteration(
        storage, project_id, iteration_id, publish_name, prediction_id, overwrite, precision
    )
    engine.published.forget(project_id)
    return True


@router.delete(PUBLISH, status_code=204, response_class=Response)
def unpublish_iteration(project_id: str, iteration_id: str, storage: Storage, engine: Engine) -> Response:
    service.unpublish_iteration(storage, project_id, iteration_id)
    engine.published.forget(project_id)
    return Response(status_code=204)
