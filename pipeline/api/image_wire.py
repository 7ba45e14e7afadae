"""Image records as wire Images (tag names, read-only SAS URLs for the blobs) and image-create summaries."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse

from pipeline.api.wire.base import WireModel
from pipeline.api.wire.images import Image, ImageCreateResult, ImageCreateSummary, ImageRegion, ImageTag
from pipeline.services import images as service
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord, RegionRecord


def region_to_wire(region: RegionRecord, names: Mapping[str, str]) -> ImageRegion:
    return ImageRegion(
        region_id=region.id,
        tag_name=names.get(region.tag_id, ""),
        created=region.created,
        tag_id=region.tag_id,
        left=region.left,
        top=region.top,
        width=region.width,
        height=region.height,
    )


class ImageWire:
    """Turns records into wire images: tag names and read-only SAS URLs for the blobs."""

    def __init__(self, storage: StorageAccount, project_id: str) -> None:
        self.store = ImageStore(storage)
        self.names = service.tag_names(storage, project_id)

    def image(self, image: ImageRecord) -> Image:
        return Image(
            id=image.id,
            created=image.created,
            width=image.width,
            height=image.height,
            resized_image_uri=self.store.blob_url(image.resized_blob),
            thumbnail_uri=self.store.blob_url(image.thumbnail_blob),
            original_image_uri=self.store.blob_url(image.original_blob),
            tags=[
                ImageTag(tag_id=t.tag_id, tag_name=self.names.get(t.tag_id, ""), created=t.created)
                for t in image.tags
            ],
            regions=[region_to_wire(r, self.names) for r in image.regions],
            metadata=image.metadata,
        )

    def images(self, images: list[ImageRecord]) -> list[Image]:
        return [self.image(i) for i in images]


def multi_status(body: WireModel, ok: bool) -> JSONResponse:
    """200 when every item succeeded, else 207 Multi-Status (same body shape)."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=200 if ok else 207)


def create_summary(
    storage: StorageAccount, project_id: str, results: list[service.CreateResult]
) -> JSONResponse:
    wire = ImageWire(storage, project_id)
    summary = ImageCreateSummary(
        is_batch_successful=all(r.status.succeeded for r in results),
        images=[
            ImageCreateResult(
                source_url=r.source, status=r.status, image=wire.image(r.image) if r.image else None
            )
            for r in results
        ],
    )
    return multi_status(summary, summary.is_batch_successful)
