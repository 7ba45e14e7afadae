"""The FastAPI application: Training API, Prediction API and portal behind one ASGI app."""

from __future__ import annotations

import logging

from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.api import (
    domains,
    exports,
    images,
    iterations,
    performance,
    prediction,
    projects,
    publishing,
    quick_test,
    stored_predictions,
    suggestions,
    tags,
)
from pipeline.api.auth import RequireKeys
from pipeline.api.body_limit import CapBodies
from pipeline.api.pools import ThreadBudget, WorkPool
from pipeline.api.routing import (
    CaseInsensitivePaths,
    CaseInsensitiveQuery,
    api_version,
)
from pipeline.api.validation import validation_code, validation_message
from pipeline.core.cores import usable_cores
from pipeline.core.errors import CustomVisionError, ServiceUnavailable
from pipeline.core.settings import Settings, get_settings
from pipeline.portal import router as portal
from pipeline.services.prediction import Predictor
from pipeline.store import StorageAccount, get_storage
from pipeline.vision.inference import ModelCache

log = logging.getLogger(__name__)

TRAINING_PREFIX = "/customvision/{version}/training"
PREDICTION_PREFIX = "/customvision/{version}/prediction"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "message": message})


def storage_unreachable(exc: BaseException) -> bool:
    """Whether an Azure SDK error means storage could not be reached or did not answer in time (the transport's
    errors, also when a download wraps them, or storage's own 503), rather than an answer such as 404 or 409."""
    seen: BaseException | None = exc
    for _ in range(8):  # causes nest a level or two; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, ServiceRequestError | ServiceResponseError):
            return True
        if isinstance(seen, HttpResponseError) and seen.status_code == 503:
            return True
        seen = seen.__cause__ or getattr(seen, "inner_exception", None)
    return False


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CustomVisionError)
    async def custom_vision_error(_: Request, exc: CustomVisionError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(ServiceUnavailable)
    async def service_unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        on_prediction_api = "/prediction/" in request.url.path.lower()
        code = "ErrorPredictionServiceUnavailable" if on_prediction_api else exc.code
        response = _error(exc.status, code, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response

    @app.exception_handler(AzureError)
    async def storage_error(request: Request, exc: AzureError) -> JSONResponse:
        """Storage down or frozen is the same 503 on every route, whichever thread or pool ran it (the clients
        give up within the storage policy's bound); any other storage error is unexpected."""
        if not storage_unreachable(exc):
            return await unexpected(request, exc)
        log.warning("storage unreachable (%s %s): %s", request.method, request.url.path, exc)
        return await service_unavailable(
            request, ServiceUnavailable("Storage is not answering; try again shortly.")
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return _error(400, validation_code(errors), validation_message(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, "NotFound", "The requested resource was not found.")
        if exc.status_code == 405:
            return _error(405, "BadRequestNotSupported", "The HTTP method is not supported on this resource.")
        return _error(exc.status_code, "BadRequest", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "ErrorUnknown", "An unexpected error occurred; stored data was left unchanged.")


def create_app(settings: Settings | None = None, account: StorageAccount | None = None) -> FastAPI:
    """Build the app; tests pass their own settings and storage account, the Functions host uses the defaults."""
    settings = settings or get_settings()
    telemetry = settings.http_telemetry
    app = FastAPI(
        title="Seer",
        description="Custom Vision compatible training and prediction APIs",
        version="0.1.0",
        # The description is served below, behind the training key; the interactive docs would load a CDN's scripts.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": telemetry, "metrics": telemetry, "logs": telemetry},
    )
    app.state.settings = settings
    app.state.account = account or get_storage()
    app.state.predictor = Predictor(
        app.state.account,
        app.state.settings,
        ModelCache(app.state.settings.model_cache_size),
    )
    config = app.state.settings
    app.state.url_fetches = WorkPool(
        "image URL downloads", config.max_concurrent_url_fetches, config.url_fetch_queue_seconds
    )
    app.state.image_work = WorkPool(
        "image uploads and predictions",
        config.image_work_threads or 2 * usable_cores(),
        config.image_work_queue_seconds,
    )
    _install_error_handlers(app)

    training = APIRouter(prefix=TRAINING_PREFIX, dependencies=[Depends(api_version)])
    for module in (
        domains,
        projects,
        tags,
        images,
        iterations,
        exports,
        performance,
        publishing,
        quick_test,
        stored_predictions,
        suggestions,
    ):
        training.include_router(module.router)
    # The Prediction API first: FastAPI tries routes in order, and a prediction URL tried against the Training API's
    # routes spent a third of the event loop's time per request on them (the hot path; issue 16, item 5).
    prediction.add_routes(app.router, PREDICTION_PREFIX)
    app.include_router(training)

    app.add_api_route("/openapi.json", lambda: app.openapi(), include_in_schema=False)
    app.include_router(portal.router)
    app.add_middleware(CapBodies, settings=app.state.settings)  # inside the key check: keyless bodies unread
    app.add_middleware(RequireKeys, settings=app.state.settings)
    app.add_middleware(ThreadBudget, threads=app.state.settings.http_threads)
    app.add_middleware(CaseInsensitiveQuery, openapi=app.openapi)
    app.add_middleware(CaseInsensitivePaths)  # outermost: the key check sees the normalised path
    return app
