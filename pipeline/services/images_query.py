"""Reading training images: GetImages with its tag, tagging-status, metadata ($filter) and order filters, counts,
and by ids."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.core.limits import MAX_IMAGE_IDS, MAX_TAG_IDS
from pipeline.core.vocabulary import Order, TaggingStatus, parse_choice
from pipeline.services.image_rules import check_ids
from pipeline.services.metadata_filter import Predicate, parse_metadata_filter
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord


def _select(
    images: Iterable[ImageRecord], tag_ids: Iterable[str], tagging: str, metadata: Predicate
) -> list[ImageRecord]:
    wanted = set(tag_ids)
    status = parse_choice(TaggingStatus, tagging, "taggingStatus", code="BadRequestInvalid")
    chosen = []
    for image in images:
        carried = image.tag_ids
        if (status == TaggingStatus.TAGGED and not carried) or (status == TaggingStatus.UNTAGGED and carried):
            continue
        if wanted and not wanted & carried:
            continue
        if not metadata(image.metadata):
            continue
        chosen.append(image)
    return chosen


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
) -> list[ImageRecord]:
    """GetImages and its Tagged/Untagged variants: images with any of `tag_ids` whose metadata passes
    `metadata_filter`, newest first by default."""
    project = get_project(account, project_id)
    order = parse_choice(Order, order_by, "orderBy", code="BadRequestInvalid")
    wanted = check_ids(tag_ids, "tag", MAX_TAG_IDS)
    metadata = parse_metadata_filter(metadata_filter)
    images = _select(ImageStore(account).iter(project.id), wanted, tagging, metadata)
    images.sort(key=lambda i: (i.created, i.id), reverse=order == Order.NEWEST)
    return images[skip : skip + take]


def count_images(
    account: StorageAccount,
    project_id: str,
    *,
    tag_ids: Iterable[str] = (),
    tagging: str = TaggingStatus.ALL,
    metadata_filter: str | None = None,
) -> int:
    project = get_project(account, project_id)
    wanted, metadata = check_ids(tag_ids, "tag"), parse_metadata_filter(metadata_filter)
    return len(_select(ImageStore(account).iter(project.id), wanted, tagging, metadata))


def get_images_by_ids(
    account: StorageAccount, project_id: str, image_ids: Iterable[str]
) -> list[ImageRecord]:
    """The images that exist, in the order asked for (one point read each, whatever the project's size)."""
    project = get_project(account, project_id)
    store = ImageStore(account)
    found = (store.get(project.id, i) for i in check_ids(image_ids, "image", MAX_IMAGE_IDS))
    return [image for image in found if image is not None]


def image_links(account: StorageAccount) -> Callable[[str], str]:
    """Blob name -> time-limited read-only URL, for the URIs an Image carries."""
    return ImageStore(account).blob_url
