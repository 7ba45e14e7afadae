"""Boxes between the wire (Region, BoundingBox) and the one internal `Box`."""

from __future__ import annotations

from pipeline.api.wire.images import ImageRegionCreateEntry, Region
from pipeline.api.wire.predictions import BoundingBox
from pipeline.core.boxes import Box
from pipeline.store.records import PredictedTag


def box_from_wire(region: Region | ImageRegionCreateEntry) -> Box:
    return Box(region.tag_id.lower(), region.left, region.top, region.width, region.height)


def boxes_from_wire(regions: list[Region] | None) -> tuple[Box, ...]:
    return tuple(box_from_wire(r) for r in regions or ())


def bounding_box(prediction: PredictedTag) -> BoundingBox | None:
    if prediction.left is None:
        return None
    return BoundingBox(
        left=prediction.left, top=prediction.top, width=prediction.width, height=prediction.height
    )
