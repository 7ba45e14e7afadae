"""The Prediction API (v3.0/v3.1): classify and detect, image and URL, stored or `nostore`, on a published
iteration named in the URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from pipeline.api.deps import Engine, ImageWork, UrlFetches
from pipeline.api.direct_route import DirectRoute
from pipeline.api.mapping.predictions import image_prediction_to_wire
from pipeline.api.pools import WorkPool
from pipeline.api.routing import prediction_api_version
from pipeline.api.uploads import uploaded_image
from pipeline.api.wire.predictions import ImagePrediction, ImageUrl
from pipeline.core.vocabulary import DomainType
from pipeline.services.prediction import PredictionRequest, Predictor

KINDS = {"classify": DomainType.CLASSIFICATION, "detect": DomainType.OBJECT_DETECTION}


async def _request(
    engine: Predictor, project_id: str, published_name: str, kind: str, store: bool, application: str | None
) -> PredictionRequest:
    """What a prediction URL asks for; storage is read (on a thread) only when the published iteration is not
    remembered."""
    target = engine.published.remembered(project_id, published_name) or await run_in_threadpool(
        engine.published.get, project_id, published_name
    )
    return PredictionRequest(
        iteration=target.iteration,
        kind=KINDS[kind],
        store=store,
        application=application,
        unknown_detection=target.unknown_detection,
    )


def _image_endpoint(kind: str, store: bool):
    """Served as a DirectRoute (the hot path): the endpoint checks the API version itself and answers its own JSON."""

    async def predict_image(
        request: Request,
        project_id: str,
        published_name: str,
        application: Annotated[str | None, Query()] = None,
    ) -> Response:
        await prediction_api_version(request.path_params["version"])
        state = request.app.state
        engine: Predictor = state.predictor
        work: WorkPool = state.image_work
        data = await uploaded_image(request, state.settings.max_prediction_image_bytes)
        target = await _request(engine, project_id, published_name, kind, store, application)
        answer = image_prediction_to_wire(await work.run(engine.predict, target, data))
        return Response(answer.model_dump_json(by_alias=True), media_type="application/json")

    return predict_image


def _url_endpoint(kind: str, store: bool):
    async def predict_url(
        project_id: str,
        published_name: str,
        engine: Engine,
        work: ImageWork,
        fetches: UrlFetches,
        image_url: ImageUrl = Body(...),
        application: str | None = Query(None),
    ) -> ImagePrediction:
        target = await _request(engine, project_id, published_name, kind, store, application)
        data = await fetches.run(engine.fetch_image, image_url.url)
        return image_prediction_to_wire(await work.run(engine.predict, target, data))

    return predict_url


def add_routes(router: APIRouter, prefix: str) -> None:
    """The Prediction API's routes, each on `router` itself under `prefix` rather than in a router of their own:
    FastAPI matches an included router's routes twice a request (to choose the branch, then the route), and these
    are the hot path (issue 16, item 5). The API version is a dependency for the description's sake; the image
    routes (DirectRoutes) check it themselves."""
    checked = [Depends(prediction_api_version)]
    for kind in KINDS:
        for suffix, store in (("", True), ("/nostore", False)):
            base = f"{prefix}/{{project_id}}/{kind}/iterations/{{published_name}}"
            for source, endpoint, route_class in (
                ("image", _image_endpoint(kind, store), DirectRoute),
                ("url", _url_endpoint(kind, store), APIRoute),
            ):
                router.add_api_route(
                    f"{base}/{source}{suffix}",
                    endpoint,
                    methods=["POST"],
                    response_model=ImagePrediction,
                    dependencies=checked,
                    tags=["prediction"],
                    route_class_override=route_class,
                )
