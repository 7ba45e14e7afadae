"""Box annotation files as other tools write them, read into Custom Vision's form: named boxes normalised to the
image (left, top, width, height in 0..1). Pascal VOC XML (pixel corners, the image size inside) and COCO JSON
(pixel left, top, width, height; the image size in its `images` entry)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass


class AnnotationError(ValueError):
    """The file is not an annotation this module can read."""


@dataclass(frozen=True)
class NamedBox:
    name: str
    left: float
    top: float
    width: float
    height: float


def _normalised(
    name: str, x0: float, y0: float, x1: float, y1: float, width: float, height: float
) -> NamedBox:
    if width <= 0 or height <= 0:
        raise AnnotationError("The annotation gives no image size.")
    x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
    y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
    return NamedBox(name.strip(), x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)


def read_voc(data: bytes, file_name: str | None = None) -> list[NamedBox]:
    """Pascal VOC: <size><width/><height/></size> and <object><name/><bndbox><xmin/>...</bndbox></object>.
    One file describes one image, so `file_name` (there for the readers' common signature) is not needed."""
    try:
        root = ElementTree.fromstring(data)
        width = float(root.findtext("size/width", "0"))
        height = float(root.findtext("size/height", "0"))
        return [
            _normalised(
                item.findtext("name", ""),
                *(
                    float(item.findtext(f"bndbox/{corner}", "nan"))
                    for corner in ("xmin", "ymin", "xmax", "ymax")
                ),
                width,
                height,
            )
            for item in root.iter("object")
        ]
    except (ElementTree.ParseError, ValueError) as error:
        raise AnnotationError(f"Not a Pascal VOC annotation: {error}") from error


def read_coco(data: bytes, file_name: str | None = None) -> list[NamedBox]:
    """COCO: `images` (id, file_name, width, height), `annotations` (image_id, category_id, bbox [x, y, w, h]),
    `categories` (id, name). The boxes of the image named `file_name`, or of the only image."""
    try:
        document = json.loads(data)
        images = document["images"]
        chosen = [
            i for i in images if file_name is None or i.get("file_name", "").split("/")[-1] == file_name
        ]
        if len(chosen) != 1:
            chosen = images if len(images) == 1 else []
        if not chosen:
            raise AnnotationError(f"The COCO file has no single image entry for {file_name!r}.")
        image = chosen[0]
        names = {c["id"]: c["name"] for c in document.get("categories", [])}
        return [
            _normalised(
                names.get(item["category_id"], str(item["category_id"])),
                item["bbox"][0],
                item["bbox"][1],
                item["bbox"][0] + item["bbox"][2],
                item["bbox"][1] + item["bbox"][3],
                float(image["width"]),
                float(image["height"]),
            )
            for item in document.get("annotations", [])
            if item.get("image_id") == image["id"]
        ]
    except (KeyError, TypeError, IndexError, ValueError) as error:
        if isinstance(error, AnnotationError):
            raise
        raise AnnotationError(f"Not a COCO annotation: {error}") from error
