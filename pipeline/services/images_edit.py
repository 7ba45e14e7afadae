"""Changing training images: delete, tag and untag, add and remove regions, merge metadata. Each edit is an
ETag-guarded read-modify-write of the image row, so concurrent edits never lose one another."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.core.boxes import Box
from pipeline.core.errors import bad_request, image_not_found
from pipeline.core.limits import (
    MAX_EDIT_BATCH,
    MAX_IMAGE_IDS,
    MAX_IMAGE_TAG_ENTRIES,
    MAX_METADATA_ENTRIES,
    MAX_TAG_IDS,
    MAX_TAGS_PER_IMAGE,
)
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import MetadataUpdateStatus
from pipeline.services.image_rules import (
    check_ids,
    check_metadata,
    check_region,
    image_id_prefix,
    mixes_negative,
    new_region,
    region_box,
    require_tags,
)
from pipeline.services.projects import get_project, refresh_thumbnail
from pipeline.services.tags import project_tags
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord, ImageTagRecord, RegionRecord, TagRecord
from pipeline.store.suggestions import SuggestionStore


@dataclass
class TagEdits:
    """Outcome of CreateImageTags, as (image id, tag id) pairs."""

    created: list[tuple[str, str]] = field(default_factory=list)
    duplicated: list[tuple[str, str]] = field(default_factory=list)
    exceeded: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RegionEdits:
    """Outcome of CreateImageRegions, as (image id, region) pairs."""

    created: list[tuple[str, RegionRecord]] = field(default_factory=list)
    duplicated: list[tuple[str, Box]] = field(default_factory=list)
    exceeded: list[tuple[str, Box]] = field(default_factory=list)


@dataclass(frozen=True)
class MetadataResult:
    image_id: str
    status: MetadataUpdateStatus
    metadata: dict[str, str] | None = None


def delete_images(
    account: StorageAccount, project_id: str, image_ids: Iterable[str], all_images: bool
) -> None:
    project = get_project(account, project_id)
    store = ImageStore(account)
    if all_images:
        targets = store.list(project.id)
    else:
        ids = check_ids(image_ids, "image", MAX_IMAGE_IDS)
        if not ids:
            raise bad_request(
                "BadRequestInvalidIds", "Give imageIds, or allImages=true to delete every image."
            )
        targets = [image for image in (store.get(project.id, i) for i in ids) if image is not None]
    for image in targets:
        store.delete(image)
    SuggestionStore(account).delete_images(project.id, [image.id for image in targets])
    if any(image.thumbnail_blob == project.thumbnail_blob for image in targets):
        refresh_thumbnail(account, project.id)


def _existing_images(store: ImageStore, project_id: str, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
    images = {}
    for image_id in check_ids(image_ids, "image"):
        image = store.get(project_id, image_id)
        if image is None:
            raise image_not_found(image_id)
        images[image_id] = image
    return images


def _check_edit_batch(size: int, what: str, limit: int = MAX_EDIT_BATCH) -> None:
    if size == 0:
        raise bad_request("BadRequestImageBatch", f"The batch contains no {what}.")
    if size > limit:
        raise bad_request("BadRequestExceededBatchSize", f"At most {limit} {what} per batch.")


def _refuse_negative_mix(image: ImageRecord, added: Iterable[str], tags: Mapping[str, TagRecord]) -> None:
    if mixes_negative(image.tag_ids | set(added), tags):
        raise bad_request(
            "BadRequestNegativeAndRegularTagOnSameImage",
            f"Image {image.id} would carry a Negative tag together with other tags.",
        )


def _add_tags(store: ImageStore, project_id: str, image_id: str, tag_ids: list[str]) -> dict[str, str]:
    """Tag one image; say for each tag whether it was created, duplicated or exceeded the per-image limit."""
    outcome: dict[str, str] = {}

    def add(image: ImageRecord) -> ImageRecord | None:
        outcome.clear()  # recomputed on every ETag retry
        have = [t.tag_id for t in image.tags]
        new: list[str] = []
        for tag_id in tag_ids:
            if tag_id in have:
                outcome[tag_id] = "duplicated"
            elif len(have) + len(new) >= MAX_TAGS_PER_IMAGE:
                outcome[tag_id] = "exceeded"
            else:
                new.append(tag_id)
                outcome[tag_id] = "created"
        if not new:
            return None
        return image.model_copy(update={"tags": [*image.tags, *(ImageTagRecord(tag_id=t) for t in new)]})

    store.update(project_id, image_id, add)
    return outcome


def add_image_tags(account: StorageAccount, project_id: str, pairs: Sequence[tuple[str, str]]) -> TagEdits:
    """CreateImageTags: tag already there -> duplicated; over MAX_TAGS_PER_IMAGE -> exceeded."""
    project = get_project(account, project_id)
    pairs = list(dict.fromkeys((i.lower(), t.lower()) for i, t in pairs))
    _check_edit_batch(len(pairs), "image tags", MAX_IMAGE_TAG_ENTRIES)
    tags = project_tags(account, project.id)
    require_tags((t for _, t in pairs), tags)
    store = ImageStore(account)
    images = _existing_images(
        store, project.id, check_ids((i for i, _ in pairs), "image", MAX_IMAGE_TAG_ENTRIES)
    )
    wanted: dict[str, list[str]] = {}
    for image_id, tag_id in pairs:
        wanted.setdefault(image_id, []).append(tag_id)
    for image_id, tag_ids in wanted.items():
        _refuse_negative_mix(images[image_id], tag_ids, tags)
    outcome = {
        (image_id, tag_id): result
        for image_id, tag_ids in wanted.items()
        for tag_id, result in _add_tags(store, project.id, image_id, tag_ids).items()
    }
    edits = TagEdits()
    for pair in pairs:
        getattr(edits, outcome.get(pair, "duplicated")).append(pair)
    return edits


def remove_image_tags(
    account: StorageAccount, project_id: str, image_ids: Iterable[str], tag_ids: Iterable[str]
) -> None:
    """DeleteImageTags: whole-image tags only (a region's tag goes with DeleteImageRegions)."""
    project = get_project(account, project_id)
    images = check_ids(image_ids, "image", MAX_EDIT_BATCH)
    removed = set(check_ids(tag_ids, "tag", MAX_TAG_IDS))
    store = ImageStore(account)

    def remove(image: ImageRecord) -> ImageRecord | None:
        kept = [t for t in image.tags if t.tag_id not in removed]
        return image.model_copy(update={"tags": kept}) if len(kept) != len(image.tags) else None

    for image_id in images:
        store.update(project.id, image_id, remove)


def _add_regions(
    store: ImageStore, settings: Settings, project_id: str, image_id: str, regions: list[Box]
) -> RegionEdits:
    """Add boxes to one image, sorting each into created, duplicated or exceeded."""
    edits = RegionEdits()

    def add(image: ImageRecord) -> ImageRecord | None:
        nonlocal edits
        edits = RegionEdits()  # recomputed on every ETag retry
        records = list(image.regions)
        for region in regions:
            if any(region_box(record).same_place(region) for record in records):
                edits.duplicated.append((image.id, region))
            elif len(records) >= settings.max_regions_per_image:
                edits.exceeded.append((image.id, region))
            else:
                records.append(new_region(region, image.id))
                edits.created.append((image.id, records[-1]))
        return image.model_copy(update={"regions": records}) if edits.created else None

    store.update(project_id, image_id, add)
    return edits


def add_image_regions(
    account: StorageAccount, settings: Settings, project_id: str, entries: Sequence[tuple[str, Box]]
) -> RegionEdits:
    """CreateImageRegions: an identical box with the same tag -> duplicated; over the per-image limit -> exceeded."""
    project = get_project(account, project_id)
    _check_edit_batch(len(entries), "regions")
    tags = project_tags(account, project.id)
    require_tags((r.tag_id for _, r in entries), tags)
    for _, region in entries:
        check_region(region)
    store = ImageStore(account)
    images = _existing_images(store, project.id, check_ids((i for i, _ in entries), "image", MAX_EDIT_BATCH))
    wanted: dict[str, list[Box]] = {}
    for image_id, region in entries:
        wanted.setdefault(image_id.lower(), []).append(region)
    for image_id, regions in wanted.items():
        _refuse_negative_mix(images[image_id], (r.tag_id for r in regions), tags)
    edits = RegionEdits()
    for image_id, regions in wanted.items():
        added = _add_regions(store, settings, project.id, image_id, regions)
        edits.created += added.created
        edits.duplicated += added.duplicated
        edits.exceeded += added.exceeded
    return edits


def remove_image_regions(account: StorageAccount, project_id: str, region_ids: Iterable[str]) -> None:
    project = get_project(account, project_id)
    removed = set(check_ids(region_ids, "region", MAX_EDIT_BATCH))
    if not removed:
        raise bad_request("BadRequestInvalidIds", "Give the regionIds to delete.")
    store = ImageStore(account)

    def remove(image: ImageRecord) -> ImageRecord | None:
        kept = [r for r in image.regions if r.id not in removed]
        return image.model_copy(update={"regions": kept}) if len(kept) != len(image.regions) else None

    def remove_from(images: Iterable[ImageRecord], wanted: set[str]) -> set[str]:
        """Remove the regions of `images` that are `wanted`; return the ids found."""
        found: set[str] = set()
        for image in images:
            hit = wanted & {r.id for r in image.regions}
            if hit:
                store.update(project.id, image.id, remove)
                found |= hit
        return found

    left = removed - remove_from(
        store.with_id_prefixes(project.id, {image_id_prefix(r) for r in removed}), removed
    )
    if left:  # regions made before their ids began with their image's: look for them everywhere
        remove_from(store.iter(project.id), left)


def _merge_metadata(
    store: ImageStore, project_id: str, image_id: str, updates: Mapping[str, str]
) -> MetadataResult:
    too_many = False

    def merge(image: ImageRecord) -> ImageRecord | None:
        nonlocal too_many
        merged = {**image.metadata, **updates}
        too_many = len(merged) > MAX_METADATA_ENTRIES
        return None if too_many else image.model_copy(update={"metadata": merged})

    image = store.update(project_id, image_id, merge)
    if image is None:
        return MetadataResult(image_id, MetadataUpdateStatus.ERROR_IMAGE_NOT_FOUND)
    status = MetadataUpdateStatus.ERROR_LIMIT_EXCEED if too_many else MetadataUpdateStatus.OK
    return MetadataResult(image_id, status, image.metadata)


def update_image_metadata(
    account: StorageAccount, project_id: str, image_ids: Iterable[str], metadata: Mapping[str, str]
) -> list[MetadataResult]:
    """UpdateImageMetadata: merge `metadata` into each image's; over MAX_METADATA_ENTRIES -> ErrorLimitExceed."""
    project = get_project(account, project_id)
    ids = check_ids(image_ids, "image", MAX_EDIT_BATCH)
    if not ids:
        raise bad_request("BadRequestInvalidIds", "Give the imageIds to update.")
    updates = check_metadata(metadata)
    store = ImageStore(account)
    return [_merge_metadata(store, project.id, image_id, updates) for image_id in ids]
