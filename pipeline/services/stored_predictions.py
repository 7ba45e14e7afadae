"""Stored predictions: query them (filters, paging with a continuation token), delete them, and move predicted
images into the training set with tags (CreateImagesFromPredictions)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from pipeline.core.boxes import Box
from pipeline.core.errors import bad_request
from pipeline.core.limits import MAX_DELETE_PREDICTIONS, MAX_PAGE_SIZE, MAX_TAG_IDS
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus, PredictionOrder, new_id, parse_choice
from pipeline.services.images_create import CreateResult, NewImage, create_images
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import PredictionRecord


@dataclass(frozen=True)
class TagWindow:
    """Predictions that gave tag `tag_id` a probability within [low, high]."""

    tag_id: str
    low: float = 0.0
    high: float = 1.0


@dataclass(frozen=True)
class PredictionQuery:
    """QueryPredictions' filters and paging; the answer carries the same query with its continuation."""

    session: str | None = None
    continuation: str | None = None
    max_count: int = 50
    order_by: str = PredictionOrder.NEWEST
    tags: tuple[TagWindow, ...] = ()
    iteration_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    application: str | None = None


@dataclass(frozen=True)
class PredictedImage:
    """One entry of CreateImagesFromPredictions: which prediction, and what to attach to its image."""

    prediction_id: str
    tag_ids: tuple[str, ...] = ()
    regions: tuple[Box, ...] = ()


@dataclass(frozen=True)
class PredictedImageBatch:
    images: Sequence[PredictedImage]
    tag_ids: Sequence[str] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


def _matches(prediction: PredictionRecord, query: PredictionQuery) -> bool:
    if query.iteration_id and prediction.iteration_id != query.iteration_id.lower():
        return False
    if query.application and prediction.application != query.application:
        return False
    if query.start_time and prediction.created < query.start_time:
        return False
    if query.end_time and prediction.created > query.end_time:
        return False
    return not query.tags or any(_tag_matches(prediction, tag) for tag in query.tags)


def _tag_matches(prediction: PredictionRecord, window: TagWindow) -> bool:
    """The prediction gave this tag a probability inside the tag's [low, high] window."""
    return any(
        p.tag_id == window.tag_id.lower() and window.low <= p.probability <= window.high
        for p in prediction.predictions
    )


# Custom Vision's default probability threshold (GetIterationPerformance's): a tag's yes/no decision flips there.
DECISION_THRESHOLD = 0.5


def uncertainty(prediction: PredictionRecord) -> float:
    """How far the prediction's most ambiguous judgement lies from the decision threshold: 0 is a coin toss, and a
    prediction without any tag or box (nothing to correct) scores the most, 0.5. Suggested order sorts by this,
    least first, so the images whose labels would teach the model most come first."""
    return min(
        (abs(p.probability - DECISION_THRESHOLD) for p in prediction.predictions), default=DECISION_THRESHOLD
    )


def _suggested_cursor(token: str) -> tuple[float, str]:
    """A Suggested-order continuation, `<uncertainty>|<row key>`, back into the sort key it names."""
    score, separator, key = token.partition("|")
    with contextlib.suppress(ValueError):
        if separator and key:
            return float(score), key
    raise bad_request(
        "BadRequestPredictionInvalidQueryParameters", "continuation is not one this query's order returned."
    )


def _ordered(
    store: PredictionStore, project_id: str, order: PredictionOrder, after: str | None
) -> Iterator[tuple[str, PredictionRecord]]:
    """(continuation, record) pairs in `order`, strictly after the continuation `after`. Row keys sort newest
    first and are Newest's and Oldest's continuations; Oldest and Suggested need the whole partition. Suggested
    sorts by (uncertainty, row key), ties newest first, and its continuation carries both, so paging stays exact
    while predictions come and go."""
    if order == PredictionOrder.NEWEST:
        yield from store.newest_first(project_id, after)
        return
    everything = list(store.newest_first(project_id))
    if order == PredictionOrder.OLDEST:
        for key, record in reversed(everything):
            if after is None or key < after:
                yield key, record
        return
    cursor = _suggested_cursor(after) if after else None
    ranked = sorted((((uncertainty(record), key), record) for key, record in everything), key=lambda r: r[0])
    for rank, record in ranked:
        if cursor is None or rank > cursor:
            yield f"{rank[0]!r}|{rank[1]}", record


def query_predictions(
    account: StorageAccount, project_id: str, query: PredictionQuery
) -> tuple[list[PredictionRecord], PredictionQuery]:
    """One page of matching predictions and the query for the next (continuation None when done)."""
    project = get_project(account, project_id)
    order = parse_choice(
        PredictionOrder, query.order_by, "orderBy", code="BadRequestPredictionInvalidQueryParameters"
    )
    if query.max_count > MAX_PAGE_SIZE:
        raise bad_request(
            "BadRequestPredictionResultsExceededCount", f"maxCount is limited to {MAX_PAGE_SIZE} predictions."
        )
    if len(query.tags) > MAX_TAG_IDS:
        raise bad_request(
            "BadRequestPredictionTagsExceededCount", f"At most {MAX_TAG_IDS} tags can filter a query."
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
    following = replace(
        query, session=query.session or new_id(), continuation=last_key if more else None, order_by=order
    )
    return page, following


def prediction_links(account: StorageAccount) -> Callable[[str], str]:
    """Blob name -> time-limited read-only URL, for the URIs a stored prediction carries."""
    return PredictionStore(account).blob_url


def delete_predictions(account: StorageAccount, project_id: str, prediction_ids: Sequence[str]) -> None:
    project = get_project(account, project_id)
    if not prediction_ids:
        raise bad_request("BadRequestPredictionIdsMissing", "Give the ids of the predictions to delete.")
    if len(prediction_ids) > MAX_DELETE_PREDICTIONS:
        raise bad_request(
            "BadRequestPredictionIdsExceededCount",
            f"At most {MAX_DELETE_PREDICTIONS} predictions per request.",
        )
    store = PredictionStore(account)
    for prediction_id in prediction_ids:
        found = store.find(project.id, prediction_id)
        if found is not None:
            store.delete(*found)


def create_images_from_predictions(
    account: StorageAccount, settings: Settings, project_id: str, batch: PredictedImageBatch
) -> list[CreateResult]:
    """Add predicted images to the training set; each prediction that became an image leaves the predictions."""
    project = get_project(account, project_id)
    if not batch.images:
        raise bad_request("BadRequestImageBatch", "The batch contains no images.")
    store = PredictionStore(account)
    found = {
        entry.prediction_id: store.find(project.id, entry.prediction_id.lower()) for entry in batch.images
    }
    new_images = [
        NewImage(
            data=store.read_blob(hit[1].original_blob),
            name=entry.prediction_id,
            tag_ids=entry.tag_ids,
            regions=entry.regions,
        )
        for entry in batch.images
        if (hit := found[entry.prediction_id]) is not None
    ]
    created = iter(
        create_images(account, settings, project.id, new_images, batch.tag_ids, batch.metadata)
        if new_images
        else []
    )
    results = []
    for entry in batch.images:
        hit = found[entry.prediction_id]
        if hit is None:
            message = f"Prediction {entry.prediction_id} not found."
            results.append(CreateResult(entry.prediction_id, ImageCreateStatus.ERROR_SOURCE, message))
            continue
        result = next(created)
        if result.status.succeeded:
            store.delete(*hit)
        results.append(result)
    return results
