"""Reading training images: GetImages with its tag, tagging-status, metadata ($filter) and order filters, counts,
and by ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pipeline.core.limits import MAX_IMAGE_IDS, MAX_TAG_IDS
from pipeline.core.vocabulary import Order, TaggingStatus, parse_choice
from pipeline.services.image_rules import check_ids
from pipeline.services.iterations import get_iteration
from pipeline.services.metadata_filter import parse_metadata_filter
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.image_index import ALL, MULTI, TAGGED, UNTAGGED, ImageIndex, tag_view
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord

_PAGE = 50  # images read at once while filtering


def _views(tag_ids: list[str], status: TaggingStatus, multiple_tags: bool) -> list[str]:
    """The index views whose union is the selection (none: nothing can match). With `multiple_tags` and tags, the
    union still needs `_several_tags` applied to it."""
    if tag_ids:
        return [] if status == TaggingStatus.UNTAGGED else [tag_view(t) for t in tag_ids]
    if multiple_tags:
        return [] if status == TaggingStatus.UNTAGGED else [MULTI]
    return [{TaggingStatus.ALL: ALL, TaggingStatus.TAGGED: TAGGED, TaggingStatus.UNTAGGED: UNTAGGED}[status]]


def _several_tags(image: ImageRecord) -> bool:
    return len(image.tag_ids) > 1


@dataclass(frozen=True)
class _Selection:
    """The images a query selects: the union of `views` in `index`, then those `keep` accepts (None: all)."""

    store: ImageStore
    index: ImageIndex
    views: list[str]
    keep: Callable[[ImageRecord], bool] | None

    @property
    def one_view(self) -> str | None:
        """The view that is the whole selection, when one is (its pages and total are index reads)."""
        return self.views[0] if len(self.views) == 1 and self.keep is None else None

    def ids(self, newest_first: bool) -> Iterator[str]:
        return self.index.stream_union(self.views, newest_first)

    def images(self, newest_first: bool) -> Iterator[ImageRecord]:
        """The selected images in order, read a page at a time."""
        ids = self.ids(newest_first)
        while page := list(itertools.islice(ids, _PAGE)):
            images = self.store.get_many(self.index.project_id, page)
            yield from (image for image in images if self.keep is None or self.keep(image))


def _selection(
    account: StorageAccount,
    project_id: str,
    tag_ids: Iterable[str],
    tagging: str,
    iteration_id: str | None,
    metadata_filter: str | None,
    multiple_tags: bool,
    limit: int | None = None,
) -> _Selection:
    """Read from the project's index, or with `iteration_id` from the training set that iteration was trained on."""
    project = get_project(account, project_id)
    status = parse_choice(TaggingStatus, tagging, "taggingStatus", code="BadRequestInvalid")
    tag_ids = check_ids(tag_ids, "tag", limit)
    metadata = parse_metadata_filter(metadata_filter)
    checks: list[Callable[[ImageRecord], bool]] = []
    if metadata_filter is not None:
        checks.append(lambda image: metadata(image.metadata))
    if multiple_tags and tag_ids:
        checks.append(_several_tags)
    store = ImageStore(account)
    if iteration_id:
        index = store.snapshot(project.id, get_iteration(account, project.id, iteration_id).id)
    else:
        index = store.index(project.id)
    keep = (lambda image: all(check(image) for check in checks)) if checks else None
    return _Selection(store, index, _views(tag_ids, status, multiple_tags), keep)


def list_images(
    account: StorageAccount,
    project_id: str,
    *,
    tag_ids: Iterable[str] = (),
    tagging: str = TaggingStatus.ALL,
    metadata_filter: str | None = None,
    multiple_tags: bool = False,
    order_by: str = Order.NEWEST,
    take: int = 50,
    skip: int = 0,
    iteration_id: str | None = None,
) -> list[ImageRecord]:
    """GetImages and its Tagged/Untagged variants: images with any of `tag_ids` whose metadata passes
    `metadata_filter` (and with `multiple_tags`, Seer's extension, that carry two tags or more), newest first by
    default. One view without a filter costs the page (see image_index); several tags cost `skip + take` index
    members per tag; a filter reads images until the page is full. With `iteration_id`, the images of that
    iteration's training set that still exist."""
    order = parse_choice(Order, order_by, "orderBy", code="BadRequestInvalid")
    selection = _selection(
        account, project_id, tag_ids, tagging, iteration_id, metadata_filter, multiple_tags, MAX_TAG_IDS
    )
    newest_first = order == Order.NEWEST
    if view := selection.one_view:
        return selection.store.get_many(
            selection.index.project_id, selection.index.page(view, skip, take, newest_first)
        )
    return list(itertools.islice(selection.images(newest_first), skip, skip + take))


def count_images(
    account: StorageAccount,
    project_id: str,
    *,
    tag_ids: Iterable[str] = (),
    tagging: str = TaggingStatus.ALL,
    metadata_filter: str | None = None,
    multiple_tags: bool = False,
    iteration_id: str | None = None,
) -> int:
    """One view without a filter is one counter read; otherwise the selection is read."""
    selection = _selection(
        account, project_id, tag_ids, tagging, iteration_id, metadata_filter, multiple_tags
    )
    if view := selection.one_view:
        return selection.index.total(view)
    if selection.keep is None:
        return sum(1 for _ in selection.ids(newest_first=True))
    return sum(1 for _ in selection.images(newest_first=True))


def get_images_by_ids(
    account: StorageAccount, project_id: str, image_ids: Iterable[str]
) -> list[ImageRecord]:
    """The images that exist, in the order asked for (one point read each, whatever the project's size)."""
    project = get_project(account, project_id)
    return ImageStore(account).get_many(project.id, check_ids(image_ids, "image", MAX_IMAGE_IDS))


def image_links(account: StorageAccount) -> Callable[[str], str]:
    """Blob name -> time-limited read-only URL, for the URIs an Image carries."""
    return ImageStore(account).blob_url
