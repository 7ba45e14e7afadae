"""Annotation files made for tests: a Pascal VOC file and a COCO file for a 320x240 image."""

from __future__ import annotations

import json

# Two boxes named in different cases; the second reaches past the image's right edge (xmax 400 > 320).
VOC = b"""<annotation><size><width>320</width><height>240</height><depth>3</depth></size>
<object><name>raccoon</name><bndbox><xmin>32</xmin><ymin>24</ymin><xmax>192</xmax><ymax>144</ymax></bndbox></object>
<object><name>Raccoon</name><bndbox><xmin>200</xmin><ymin>120</ymin><xmax>400</xmax><ymax>240</ymax></bndbox></object>
</annotation>"""


def coco(file_name: str) -> bytes:
    """A COCO file with one `fork` box on the image called `file_name`."""
    return json.dumps(
        {
            "images": [{"id": 7, "file_name": file_name, "width": 320, "height": 240}],
            "annotations": [{"image_id": 7, "category_id": 1, "bbox": [160, 60, 80, 120]}],
            "categories": [{"id": 1, "name": "fork"}],
        }
    ).encode()
