"""QuickTestImage / QuickTestUrl: predict with any trained iteration of a project, published or not."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from pipeline.api.deps import Config, Engine, ImageWork, UrlFetches
from pipeline.api.mapping.predictions import image_prediction_to_wire
from pipeline.api.uploads import uploaded_image
from pipeline.api.wire.predictions import ImagePrediction, ImageUrl
from pipeline.core.domains import domain_of
from pipeline.services.iterations import completed_iteration, latest_completed_iteration
from pipeline.services.prediction import PredictionRequest, Predictor
from pipeline.services.projects import get_project

router = APIRouter(tags=["quick test"])


def _request(engine: Predictor, project_id: str, iteration_id: str | None, store: bool) -> PredictionRequest:
    account = engine.account
    iteration = (
        completed_iteration(account, project_id, iteration_id)
        if iteration_id
        else latest_completed_iteration(account, project_id)
    )
    return PredictionRequest(
        iteration=iteration,
        kind=domain_of(iteration.domain_id).type,
        store=store,
        unknown_detection=get_project(account, project_id).unknown_detection,
    )


@router.post("/projects/{project_id}/quicktest/image", response_model=ImagePrediction)
async def quick_test_image(
    project_id: str,
    request: Request,
    engine: Engine,
    config: Config,
    work: ImageWork,
    iteration_id: str | None = Query(None, alias="iterationId"),
    store: bool = Query(True),
) -> ImagePrediction:
    data = await uploaded_image(request, config.max_prediction_image_bytes)
    target = await run_in_threadpool(_request, engine, project_id, iteration_id, store)
    return image_prediction_to_wire(await work.run(engine.predict, target, data))


@router.post("/projects/{project_id}/quicktest/url", response_model=ImagePrediction)
async def quick_test_url(
    project_id: str,
    engine: Engine,
    work: ImageWork,
    fetches: UrlFetches,
    image_url: ImageUrl = Body(...),
    iteration_id: str | None = Query(None, alias="iterationId"),
    store: bool = Query(True),
) -> ImagePrediction:
    target = await run_in_threadpool(_request, engine, project_id, iteration_id, store)
    data = await fetches.run(engine.fetch_image, image_url.url)
    return image_prediction_to_wire(await work.run(engine.predict, target, data))
