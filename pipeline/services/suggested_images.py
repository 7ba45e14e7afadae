"""QuerySuggestedImages and QuerySuggestedImageCount: the untagged images whose stored suggestions (kept by
SuggestTagsAndRegions, services/suggestions.py) from one iteration give one of the asked-for tags at least the
threshold's probability. No tag ids means every tag of the project. An image tagged since its suggestion was made
no longer counts: only images without tags or regions are suggested."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipeline.core.errors import bad_request, tag_not_found
from pipeline.core.vocabulary import SuggestionOrder, new_id, parse_choice
from pipeline.services.iterations import completed_iteration
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord, IterationRecord, SuggestionRecord
from pipeline.store.suggestions import SuggestionStore
from pipeline.store.tags import TagStore
from pipeline.vision.active_learning import decode_embedding, label_first_order

_INVALID = "BadRequestInvalid"


@dataclass(frozen=True)
class TagThreshold:
    """Which tags (empty: all of the project's), from which probability on."""

    tag_ids: tuple[str, ...]
    threshold: float


@dataclass(frozen=True)
class SuggestedImageQuery:
    """One page's request; the answer carries the same query with its session and continuation."""

    filter: TagThreshold
    max_count: int
    sort_by: str = SuggestionOrder.UNCERTAINTY_DESCENDING
    session: str | None = None
    continuation: str | None = None
    label_first: bool = False  # Seer's order (see _label_first_page) instead of sort_by


@dataclass(frozen=True)
class SuggestedImage:
    suggestion: SuggestionRecord
    image: ImageRecord
    domain_id: str  # the iteration's


def _checked_tags(
    account: StorageAccount, iteration: IterationRecord, tag_ids: Sequence[str]
) -> tuple[str, ...]:
    """The asked-for tag ids, lower-cased, or every tag of the project when none are given; NotFoundTag for one
    the project does not have."""
    known = [tag.id for tag in TagStore(account).list(iteration.project_id)]
    asked = tuple(dict.fromkeys(tag_id.lower() for tag_id in tag_ids))
    for tag_id in asked:
        if tag_id not in known:
            raise tag_not_found(tag_id)
    return asked or tuple(known)


def _untagged_matches(
    account: StorageAccount, iteration: IterationRecord, tags: TagThreshold
) -> list[tuple[SuggestionRecord, ImageRecord]]:
    """Stored suggestions of the iteration with a wanted tag at or above the threshold, on images still
    untagged."""
    wanted = set(tags.tag_ids)
    hits = [
        s
        for s in SuggestionStore(account).of_iteration(iteration.project_id, iteration.id)
        if any(p.tag_id in wanted and p.probability >= tags.threshold for p in s.predictions)
    ]
    images = {
        image.id: image
        for image in ImageStore(account).get_many(iteration.project_id, [s.image_id for s in hits])
        if not image.tag_ids
    }
    return [(s, images[s.image_id]) for s in hits if s.image_id in images]


def _cursor(continuation: str) -> tuple[float, str]:
    """A continuation, `<uncertainty>|<image id>`, back into the sort key it names."""
    score, separator, image_id = continuation.partition("|")
    with contextlib.suppress(ValueError):
        if separator and image_id:
            return float(score), image_id
    raise bad_request(_INVALID, "continuation is not one this query returned.")


def query_suggested_images(
    account: StorageAccount, project_id: str, iteration_id: str, query: SuggestedImageQuery
) -> tuple[list[SuggestedImage], SuggestedImageQuery]:
    """One page sorted by (uncertainty, image id), and the query for the next page (continuation None when this
    is the last). The continuation names the last sort key returned, so paging stays exact while suggestions come
    and go."""
    iteration = completed_iteration(account, project_id, iteration_id)
    order = parse_choice(SuggestionOrder, query.sort_by, "sortBy", code=_INVALID)
    tags = replace(query.filter, tag_ids=_checked_tags(account, iteration, query.filter.tag_ids))
    if query.label_first:
        return _label_first_page(account, iteration, tags, replace(query, sort_by=order))
    cursor = _cursor(query.continuation) if query.continuation else None
    descending = order == SuggestionOrder.UNCERTAINTY_DESCENDING
    ranked = sorted(
        (((s.uncertainty, s.image_id), s, image) for s, image in _untagged_matches(account, iteration, tags)),
        key=lambda entry: entry[0],
        reverse=descending,
    )
    after = [
        entry
        for entry in ranked
        if cursor is None or (entry[0] < cursor if descending else entry[0] > cursor)
    ]
    page = after[: query.max_count]
    more = len(after) > len(page)
    last = page[-1][0] if page else None
    following = replace(
        query,
        sort_by=order,
        session=query.session or new_id(),
        continuation=f"{last[0]!r}|{last[1]}" if more and last else None,
    )
    return [SuggestedImage(s, image, iteration.domain_id) for _, s, image in page], following


def _label_first_page(
    account: StorageAccount, iteration: IterationRecord, tags: TagThreshold, query: SuggestedImageQuery
) -> tuple[list[SuggestedImage], SuggestedImageQuery]:
    """One page of the "label these first" order (pipeline.vision.active_learning): a classifier's suggestions by
    how typical they are in the model's feature space and how far from the images ranked before them; a
    detector's (no features stored) by uncertainty alone. The order is computed
    afresh for each page over what still matches, and the continuation is how many images were returned so far,
    so an image tagged between two pages only shifts the rest of the list up by one."""
    offset = _offset(query.continuation) if query.continuation else 0
    matches = sorted(_untagged_matches(account, iteration, tags), key=lambda m: m[0].image_id)
    with_features = bool(matches) and all(s.embedding for s, _ in matches)
    embeddings = (
        np.stack([decode_embedding(s.embedding) for s, _ in matches if s.embedding])
        if with_features
        else None
    )
    ranked = label_first_order(embeddings, [s.uncertainty for s, _ in matches], offset + query.max_count + 1)
    page = [matches[i] for i in ranked[offset : offset + query.max_count]]
    more = len(ranked) > offset + len(page)
    following = replace(
        query, session=query.session or new_id(), continuation=str(offset + len(page)) if more else None
    )
    return [SuggestedImage(s, image, iteration.domain_id) for s, image in page], following


def _offset(continuation: str) -> int:
    if continuation.isdigit():
        return int(continuation)
    raise bad_request(_INVALID, "continuation is not one this query returned.")


def count_suggested_images(
    account: StorageAccount, project_id: str, iteration_id: str, tags: TagThreshold
) -> dict[str, int]:
    """Per tag id asked for (every tag of the project when none), how many untagged images have a stored
    suggestion giving that tag at least the threshold."""
    iteration = completed_iteration(account, project_id, iteration_id)
    tags = replace(tags, tag_ids=_checked_tags(account, iteration, tags.tag_ids))
    counts = dict.fromkeys(tags.tag_ids, 0)
    for suggestion, _ in _untagged_matches(account, iteration, tags):
        for tag_id in {p.tag_id for p in suggestion.predictions if p.probability >= tags.threshold}:
            if tag_id in counts:
                counts[tag_id] += 1
    return counts
