"""Image records, image batches and image edits as wire shapes (with tag names and blob URLs)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse

from pipeline.api.mapping import Links
from pipeline.api.mapping.predictions import prediction_to_wire
from pipeline.api.wire.base import WireModel
from pipeline.api.wire.images import (
    Image,
    ImageCreateResult,
    ImageCreateSummary,
    ImageMetadataUpdateEntry,
    ImageMetadataUpdateSummary,
    ImageRegion,
    ImageRegionCreateEntry,
    ImageRegionCreateResult,
    ImageRegionCreateSummary,
    ImageTag,
    ImageTagCreateEntry,
    ImageTagCreateSummary,
)
from pipeline.api.wire.performance import ImagePerformance
from pipeline.core.boxes import Box
from pipeline.core.vocabulary import MetadataUpdateStatus
from pipeline.services.images_create import CreateResult
from pipeline.services.images_edit import MetadataResult, RegionEdits, TagEdits
from pipeline.services.performance import ImageResult
from pipeline.store.records import ImageRecord, RegionRecord


def multi_status(body: WireModel, ok: bool) -> JSONResponse:
    """200 when every item succeeded, else 207 Multi-Status (same body shape)."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=200 if ok else 207)


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
    """Image records as wire Images: tag names, and read-only SAS URLs for the blobs."""

    def __init__(self, links: Links, tag_names: Mapping[str, str]) -> None:
        self.links = links
        self.names = tag_names

    def image(self, image: ImageRecord) -> Image:
        return Image(
            id=image.id,
            created=image.created,
            width=image.width,
            height=image.height,
            resized_image_uri=self.links(image.resized_blob),
            thumbnail_uri=self.links(image.thumbnail_blob),
            original_image_uri=self.links(image.original_blob),
            tags=[
                ImageTag(tag_id=t.tag_id, tag_name=self.names.get(t.tag_id, ""), created=t.created)
                for t in image.tags
            ],
            regions=[region_to_wire(r, self.names) for r in image.regions],
            metadata=image.metadata,
        )

    def images(self, images: list[ImageRecord]) -> list[Image]:
        return [self.image(i) for i in images]

    def create_summary(self, results: list[CreateResult]) -> JSONResponse:
        summary = ImageCreateSummary(
            is_batch_successful=all(r.status.succeeded for r in results),
            images=[
                ImageCreateResult(
                    source_url=r.source or "", status=r.status, image=self.image(r.image) if r.image else None
                )
                for r in results
            ],
        )
        return multi_status(summary, summary.is_batch_successful)

    def performance(self, result: ImageResult) -> ImagePerformance:
        image = self.image(result.image)
        return ImagePerformance(
            predictions=[prediction_to_wire(p) for p in result.predictions],
            id=image.id,
            created=image.created,
            width=image.width,
            height=image.height,
            image_uri=image.resized_image_uri,
            thumbnail_uri=image.thumbnail_uri,
            tags=image.tags,
            regions=image.regions,
        )


def tag_edits_to_wire(edits: TagEdits) -> ImageTagCreateSummary:
    def entries(pairs: list[tuple[str, str]]) -> list[ImageTagCreateEntry]:
        return [ImageTagCreateEntry(image_id=i, tag_id=t) for i, t in pairs]

    return ImageTagCreateSummary(
        created=entries(edits.created), duplicated=entries(edits.duplicated), exceeded=entries(edits.exceeded)
    )


def region_edits_to_wire(edits: RegionEdits, names: Mapping[str, str]) -> JSONResponse:
    def entries(pairs: list[tuple[str, Box]]) -> list[ImageRegionCreateEntry]:
        return [
            ImageRegionCreateEntry(
                image_id=i, tag_id=r.tag_id, left=r.left, top=r.top, width=r.width, height=r.height
            )
            for i, r in pairs
        ]

    summary = ImageRegionCreateSummary(
        created=[
            ImageRegionCreateResult(image_id=i, **region_to_wire(r, names).model_dump())
            for i, r in edits.created
        ],
        duplicated=entries(edits.duplicated),
        exceeded=entries(edits.exceeded),
    )
    return multi_status(summary, not (edits.duplicated or edits.exceeded))


def metadata_results_to_wire(results: list[MetadataResult]) -> JSONResponse:
    summary = ImageMetadataUpdateSummary(
        is_batch_successful=all(r.status == MetadataUpdateStatus.OK for r in results),
        images=[
            ImageMetadataUpdateEntry(image_id=r.image_id, status=r.status, metadata=r.metadata)
            for r in results
        ],
    )
    return multi_status(summary, summary.is_batch_successful)
