"""Reading training images: GetImages with its tag, tagging-status, metadata ($filter) and order filters, counts,
and by ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

from pipeline.core.limits import MAX_IMAGE_IDS, MAX_TAG_IDS
from pipeline.core.vocabulary import Order, TaggingStatus, parse_choice
from pipeline.services.image_rules import check_ids
from pipeline.services.iterations import get_iteration
from pipeline.services.metadata_filter import Predicate, parse_metadata_filter
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.image_index import ALL, TAGGED, UNTAGGED, ImageIndex, tag_view
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord

_PAGE = 50  # images read at once while filtering


def _views(tag_ids: list[str], status: TaggingStatus) -> list[str]:
    """The index views whose union is the selection (none: nothing can match)."""
    if tag_ids:
        return [] if status == TaggingStatus.UNTAGGED else [tag_view(t) for t in tag_ids]
    return [{TaggingStatus.ALL: ALL, TaggingStatus.TAGGED: TAGGED, TaggingStatus.UNTAGGED: UNTAGGED}[status]]


def _selection(
    account: StorageAccount,
    project_id: str,
    tag_ids: Iterable[str],
    tagging: str,
    iteration_id: str | None,
    limit: int | None = None,
) -> tuple[ImageStore, ImageIndex, list[str]]:
    """The index to read (the project's, or with `iteration_id` the training set that iteration was trained on)
    and the views whose union is the selection."""
    project = get_project(account, project_id)
    status = parse_choice(TaggingStatus, tagging, "taggingStatus", code="BadRequestInvalid")
    store = ImageStore(account)
    if iteration_id:
        index = store.snapshot(project.id, get_iteration(account, project.id, iteration_id).id)
    else:
        index = store.index(project.id)
    return store, index, _views(check_ids(tag_ids, "tag", limit), status)


def _matching(
    store: ImageStore, index: ImageIndex, views: list[str], newest_first: bool, metadata: Predicate
) -> Iterator[ImageRecord]:
    """The selected images in order, read a page at a time, that pass the metadata filter."""
    ids = index.stream_union(views, newest_first)
    while page := list(itertools.islice(ids, _PAGE)):
        yield from (image for image in store.get_many(index.project_id, page) if metadata(image.metadata))


def list_images(
    account: StorageAccount,
    project_id: str,
    *,
    tag_ids: Iterable[str] = (),
    tagging: str = TaggingStatus.ALL,
    metadata_filter: str | None = None,
    order_by: str = Order.NEWEST,
    take: int = 50,
    skip: int = 0,
    iteration_id: str | None = None,
) -> list[ImageRecord]:
    """GetImages and its Tagged/Untagged variants: images with any of `tag_ids` whose metadata passes
    `metadata_filter`, newest first by default. One view without a metadata filter costs the page (see
    image_index); several tags cost `skip + take` index members per tag; a metadata filter reads images until the
    page is full. With `iteration_id`, the images of that iteration's training set that still exist."""
    order = parse_choice(Order, order_by, "orderBy", code="BadRequestInvalid")
    store, index, views = _selection(account, project_id, tag_ids, tagging, iteration_id, MAX_TAG_IDS)
    metadata = parse_metadata_filter(metadata_filter)
    newest_first = order == Order.NEWEST
    if metadata_filter is None and len(views) == 1:
        return store.get_many(index.project_id, index.page(views[0], skip, take, newest_first))
    matching = _matching(store, index, views, newest_first, metadata)
    return list(itertools.islice(matching, skip, skip + take))


def count_images(
    account: StorageAccount,
    project_id: str,
    *,
    tag_ids: Iterable[str] = (),
    tagging: str = TaggingStatus.ALL,
    metadata_filter: str | None = None,
    iteration_id: str | None = None,
) -> int:
    """One view without a metadata filter is one counter read; otherwise the selection is read."""
    store, index, views = _selection(account, project_id, tag_ids, tagging, iteration_id)
    metadata = parse_metadata_filter(metadata_filter)
    if metadata_filter is None and len(views) == 1:
        return index.total(views[0])
    if metadata_filter is None:
        return sum(1 for _ in index.stream_union(views, newest_first=True))
    return sum(1 for _ in _matching(store, index, views, True, metadata))


def get_images_by_ids(
    account: StorageAccount, project_id: str, image_ids: Iterable[str]
) -> list[ImageRecord]:
    """The images that exist, in the order asked for (one point read each, whatever the project's size)."""
    project = get_project(account, project_id)
    return ImageStore(account).get_many(project.id, check_ids(image_ids, "image", MAX_IMAGE_IDS))


def image_links(account: StorageAccount) -> Callable[[str], str]:
    """Blob name -> time-limited read-only URL, for the URIs an Image carries."""
    return ImageStore(account).blob_url
