"""What routes receive, as `Annotated` aliases: the app's settings, storage account, predictor and work pools, and the
query parameters Custom Vision shares across operations (paging, comma-separated id lists).

Every dependency here is `async def` although none awaits: FastAPI runs a plain `def` dependency on a worker thread,
and a thread hop for reading `app.state` costs more than the read (issue 16, item 5: four such hops were a third
of the prediction route's overhead over its in-process floor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from pipeline.api.pools import WorkPool
from pipeline.api.routing import api_version
from pipeline.core.limits import MAX_PAGE_SIZE
from pipeline.core.settings import Settings
from pipeline.services.prediction import Predictor
from pipeline.store import StorageAccount


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _account(request: Request) -> StorageAccount:
    return request.app.state.account


async def _predictor(request: Request) -> Predictor:
    return request.app.state.predictor


async def _url_fetches(request: Request) -> WorkPool:
    return request.app.state.url_fetches


async def _image_work(request: Request) -> WorkPool:
    return request.app.state.image_work


def _csv_list(value: str | None) -> list[str]:
    """Custom Vision sends arrays in the query string comma-separated (`tagIds=a,b`)."""
    if not value:
        return []
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def _csv_query(alias: str):
    async def parse(value: str | None = Query(None, alias=alias)) -> list[str]:
        return _csv_list(value)

    return Depends(parse)


Config = Annotated[Settings, Depends(_settings)]
ApiVersion = Annotated[str, Depends(api_version)]  # the Training API version the request names
Storage = Annotated[StorageAccount, Depends(_account)]
Engine = Annotated[Predictor, Depends(_predictor)]
UrlFetches = Annotated[WorkPool, Depends(_url_fetches)]  # run work that downloads image URLs here
ImageWork = Annotated[WorkPool, Depends(_image_work)]  # and decoding, resizing and predicting here

Take = Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)]
Skip = Annotated[int, Query(ge=0)]
OrderBy = Annotated[str, Query(alias="orderBy")]
MetadataFilter = Annotated[str | None, Query(alias="$filter")]  # v3.4-preview's filter on image metadata
# Seer's extension to GetImages and GetImageCount (the SDK never sends it): only images with two tags or more, the
# ones a Multiclass project cannot train on.
MultipleTags = Annotated[bool, Query(alias="multipleTags")]
# Accepted for compatibility; Seer has no per-iteration image snapshots (yet), so the workspace is always listed.
IterationIdQuery = Annotated[str | None, Query(alias="iterationId")]
TagIds = Annotated[list[str], _csv_query("tagIds")]
ImageIds = Annotated[list[str], _csv_query("imageIds")]
RegionIds = Annotated[list[str], _csv_query("regionIds")]
PredictionIds = Annotated[list[str], _csv_query("ids")]
