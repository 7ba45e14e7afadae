"""The checks Custom Vision applies to image requests, shared by creating and editing images: ids, tags,
regions, metadata and the Negative-tag rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

from pipeline.core.boxes import Box
from pipeline.core.errors import bad_request
from pipeline.core.limits import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_VALUE_LENGTH,
    MAX_TAGS_PER_IMAGE,
)
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus, TagType, new_id
from pipeline.store.records import RegionRecord, TagRecord
from pipeline.vision.imaging import ImageRejected


def unique_ids(values: Iterable[str]) -> list[str]:
    """Lower-cased (ids are lower-case GUIDs), duplicates dropped, order kept."""
    return list(dict.fromkeys(v.strip().lower() for v in values if v and v.strip()))


def check_ids(values: Iterable[str], what: str, limit: int | None = None) -> list[str]:
    """Ids must be GUIDs (they become table keys) and at most `limit` of them (any number when None)."""
    ids = unique_ids(values)
    for value in ids:
        try:
            uuid.UUID(value)
        except ValueError:
            raise bad_request("BadRequestInvalidIds", f"{value!r} is not a valid {what} id.") from None
    if limit is not None and len(ids) > limit:
        raise bad_request(
            "BadRequestExceededBatchSize", f"At most {limit} {what} ids are allowed per request."
        )
    return ids


def require_tags(tag_ids: Iterable[str], tags: Mapping[str, TagRecord]) -> None:
    unknown = [t for t in unique_ids(tag_ids) if t not in tags]
    if unknown:
        raise bad_request("BadRequestImageTags", f"Unknown tag ids for this project: {', '.join(unknown)}.")


def check_region(region: Box) -> None:
    """Normalised coordinates: the box must lie inside the image and have an area."""
    if not region.inside_image():
        raise bad_request(
            "BadRequestImageRegions",
            f"Region ({region.left}, {region.top}, {region.width}, {region.height}) must lie within 0..1 "
            "with a positive size.",
        )


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise bad_request(
            "BadRequestImageMetadataKey", f"At most {MAX_METADATA_ENTRIES} metadata entries per image."
        )
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY_LENGTH:
            raise bad_request(
                "BadRequestImageMetadataKey",
                f"Metadata keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters.",
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            raise bad_request(
                "BadRequestImageMetadataValue",
                f"Metadata values must be at most {MAX_METADATA_VALUE_LENGTH} characters.",
            )
    return dict(metadata)


def mixes_negative(tag_ids: Iterable[str], tags: Mapping[str, TagRecord]) -> bool:
    """A Negative tag means "none of the others": it cannot share an image with another tag."""
    types = {tags[t].type for t in tag_ids if t in tags}
    return TagType.NEGATIVE in types and len(types) > 1


def tag_problem(
    tag_ids: Sequence[str], regions: Sequence[Box], tags: Mapping[str, TagRecord], settings: Settings
) -> ImageRejected | None:
    """Why an image may not carry these tags and regions, or None."""
    unknown = [t for t in unique_ids([*tag_ids, *(r.tag_id for r in regions)]) if t not in tags]
    if unknown:
        return ImageRejected(
            ImageCreateStatus.ERROR_INVALID_TAG, f"Unknown tag ids for this project: {', '.join(unknown)}."
        )
    if len(tag_ids) > MAX_TAGS_PER_IMAGE:
        return ImageRejected(
            ImageCreateStatus.ERROR_TAG_LIMIT_EXCEED, f"An image can have at most {MAX_TAGS_PER_IMAGE} tags."
        )
    if len(regions) > settings.max_regions_per_image:
        return ImageRejected(
            ImageCreateStatus.ERROR_REGION_LIMIT_EXCEED,
            f"An image can have at most {settings.max_regions_per_image} regions.",
        )
    if mixes_negative([*tag_ids, *(r.tag_id for r in regions)], tags):
        return ImageRejected(
            ImageCreateStatus.ERROR_NEGATIVE_AND_REGULAR_TAG,
            "A Negative tag cannot be combined with other tags.",
        )
    return None


def region_box(region: RegionRecord) -> Box:
    return Box(region.tag_id, region.left, region.top, region.width, region.height)


_IMAGE_PART = (
    18  # of a region id: "xxxxxxxx-xxxx-4xxx", the image id's first 64 bits (version nibble included)
)


def new_region(box: Box, image_id: str) -> RegionRecord:
    """A region whose id begins with its image's, so DeleteImageRegions, which names regions alone, finds the
    image with a one-row read; the rest is random (the id stays a version-4 GUID)."""
    region_id = image_id[:_IMAGE_PART] + new_id()[_IMAGE_PART:]
    return RegionRecord(
        id=region_id, tag_id=box.tag_id, left=box.left, top=box.top, width=box.width, height=box.height
    )


def image_id_prefix(region_id: str) -> str:
    """What a region id shares with its image's id (regions made before ids were built so share nothing)."""
    return region_id[:_IMAGE_PART]
