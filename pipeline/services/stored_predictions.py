"""Stored predictions: query them (filters, paging with a continuation token), delete them, and move predicted
images into the training set with tags (CreateImagesFromPredictions)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from pipeline.api.wire.images import ImageCreateStatus
from pipeline.api.wire.predictions import ImageIdCreateBatch, PredictionQueryTag, PredictionQueryToken
from pipeline.core.errors import bad_request
from pipeline.core.settings import Settings
from pipeline.services.images import CreateResult, NewImage, NewRegion, create_images
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import PredictionRecord

ORDERS = ("Newest", "Oldest")
MAX_DELETE_IDS = 64
MAX_QUERY_TAGS = 20


def _matches(prediction: PredictionRecord, query: PredictionQueryToken) -> bool:
    if query.iteration_id and prediction.iteration_id != query.iteration_id.lower():
        return False
    if query.application and prediction.application != query.application:
        return False
    if query.start_time and prediction.created < query.start_time:
        return False
    if query.end_time and prediction.created > query.end_time:
        return False
    return not query.tags or any(_tag_matches(prediction, tag) for tag in query.tags)


def _tag_matches(prediction: PredictionRecord, tag: PredictionQueryTag) -> bool:
    """The prediction gave this tag a probability inside the tag's [min, max] window."""
    return any(
        p.tag_id == tag.id.lower() and tag.min_threshold <= p.probability <= tag.max_threshold
        for p in prediction.predictions
    )


def _ordered(
    store: PredictionStore, project_id: str, order: str, after: str | None
) -> Iterator[tuple[str, PredictionRecord]]:
    """Row keys sort newest first; oldest first needs the whole partition (reversed), then the same cursor."""
    if order == "Newest":
        yield from store.newest_first(project_id, after)
        return
    for key, record in reversed(list(store.newest_first(project_id))):
        if after is None or key < after:
            yield key, record


def query_predictions(
    account: StorageAccount, project_id: str, query: PredictionQueryToken
) -> tuple[list[PredictionRecord], PredictionQueryToken]:
    """One page of matching predictions and the token for the next (continuation None when done)."""
    project = get_project(account, project_id)
    order = next((o for o in ORDERS if o.lower() == query.order_by.lower()), None)
    if order is None:
        raise bad_request("BadRequestPredictionInvalidQueryParameters", "orderBy must be Newest or Oldest.")
    if len(query.tags or []) > MAX_QUERY_TAGS:
        raise bad_request(
            "BadRequestPredictionTagsExceededCount", f"At most {MAX_QUERY_TAGS} tags can filter a query."
        )
    page: list[PredictionRecord] = []
    last_key: str | None = None
    more = False
    for key, record in _ordered(PredictionStore(account), project.id, order, query.continuation):
        if not _matches(record, query):
            continue
        if len(page) == query.max_count:
            more = True
            break
        page.append(record)
        last_key = key
    token = query.model_copy(
        update={
            "session": query.session or str(uuid.uuid4()),
            "continuation": last_key if more else None,
            "order_by": order,
        }
    )
    return page, token


def delete_predictions(account: StorageAccount, project_id: str, prediction_ids: Sequence[str]) -> None:
    project = get_project(account, project_id)
    if not prediction_ids:
        raise bad_request("BadRequestPredictionIdsMissing", "Give the ids of the predictions to delete.")
    if len(prediction_ids) > MAX_DELETE_IDS:
        raise bad_request(
            "BadRequestPredictionIdsExceededCount", f"At most {MAX_DELETE_IDS} predictions per request."
        )
    store = PredictionStore(account)
    for prediction_id in prediction_ids:
        found = store.find(project.id, prediction_id)
        if found is not None:
            store.delete(*found)


def create_images_from_predictions(
    account: StorageAccount, settings: Settings, project_id: str, batch: ImageIdCreateBatch
) -> list[CreateResult]:
    """Add predicted images to the training set; each prediction that became an image leaves the predictions."""
    project = get_project(account, project_id)
    if not batch.images:
        raise bad_request("BadRequestImageBatch", "The batch contains no images.")
    store = PredictionStore(account)
    found = {entry.id: store.find(project.id, entry.id.lower()) for entry in batch.images}
    new_images = [
        NewImage(
            data=store.read_blob(hit[1].original_blob),
            name=entry.id,
            tag_ids=tuple(t.lower() for t in entry.tag_ids or ()),
            regions=tuple(
                NewRegion(r.tag_id.lower(), r.left, r.top, r.width, r.height) for r in entry.regions or ()
            ),
        )
        for entry in batch.images
        if (hit := found[entry.id]) is not None
    ]
    created = iter(
        create_images(
            account,
            settings,
            project.id,
            new_images,
            [t.lower() for t in batch.tag_ids or ()],
            batch.metadata,
        )
        if new_images
        else []
    )
    results = []
    for entry in batch.images:
        hit = found[entry.id]
        if hit is None:
            results.append(
                CreateResult(entry.id, ImageCreateStatus.ERROR_SOURCE, f"Prediction {entry.id} not found.")
            )
            continue
        result = next(created)
        if result.status.succeeded:
            store.delete(*hit)
        results.append(result)
    return results
