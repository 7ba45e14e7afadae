"""Images, image tags, regions and metadata on the wire (field names as the official Training API models)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator

from pipeline.api.wire.base import WireModel
from pipeline.core.vocabulary import ImageCreateStatus


def _strict_base64(value: object) -> object:
    """Reject anything that is not standard base64; pydantic's own decoder silently skips stray characters."""
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("contents must be base64-encoded image bytes") from exc


Base64Bytes = Annotated[bytes, BeforeValidator(_strict_base64)]


class ImageTag(WireModel):
    tag_id: str
    tag_name: str
    created: datetime


class ImageRegion(WireModel):
    region_id: str
    tag_name: str
    created: datetime
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class Image(WireModel):
    id: str
    created: datetime
    width: int
    height: int
    resized_image_uri: str
    thumbnail_uri: str
    original_image_uri: str
    tags: list[ImageTag]
    regions: list[ImageRegion]
    metadata: dict[str, str]


class ImageCreateResult(WireModel):
    source_url: str = ""
    status: ImageCreateStatus
    image: Image | None = None


class ImageCreateSummary(WireModel):
    is_batch_successful: bool
    images: list[ImageCreateResult]


class Region(WireModel):
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class ImageFileCreateEntry(WireModel):
    name: str | None = None
    contents: Base64Bytes
    tag_ids: list[str] | None = None
    regions: list[Region] | None = None


class ImageFileCreateBatch(WireModel):
    images: list[ImageFileCreateEntry]
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageUrlCreateEntry(WireModel):
    url: str
    tag_ids: list[str] | None = None
    regions: list[Region] | None = None


class ImageUrlCreateBatch(WireModel):
    images: list[ImageUrlCreateEntry]
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageTagCreateEntry(WireModel):
    image_id: str
    tag_id: str


class ImageTagCreateBatch(WireModel):
    tags: list[ImageTagCreateEntry] = []


class ImageTagCreateSummary(WireModel):
    created: list[ImageTagCreateEntry]
    duplicated: list[ImageTagCreateEntry]
    exceeded: list[ImageTagCreateEntry]


class ImageRegionCreateEntry(WireModel):
    image_id: str
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class ImageRegionCreateBatch(WireModel):
    regions: list[ImageRegionCreateEntry] = []


class ImageRegionCreateResult(WireModel):
    image_id: str
    region_id: str
    tag_name: str
    created: datetime
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class ImageRegionCreateSummary(WireModel):
    created: list[ImageRegionCreateResult]
    duplicated: list[ImageRegionCreateEntry]
    exceeded: list[ImageRegionCreateEntry]


class ImageMetadataUpdateEntry(WireModel):
    image_id: str
    status: str
    metadata: dict[str, str] | None = None


class ImageMetadataUpdateSummary(WireModel):
    is_batch_successful: bool
    images: list[ImageMetadataUpdateEntry]
