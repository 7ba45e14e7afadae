"""The Pascal VOC and COCO readers the drop folder uses for boxes."""

from __future__ import annotations

import pytest

from pipeline.vision.annotations import AnnotationError, read_coco, read_voc
from tests.annotations import VOC, coco


def test_voc_reader_normalises_and_clips() -> None:
    first, second = read_voc(VOC)
    assert (first.name, first.left, first.top, first.width, first.height) == ("raccoon", 0.1, 0.1, 0.5, 0.5)
    assert second.left + second.width == pytest.approx(1.0)  # xmax 400 clipped to the 320 px image
    with pytest.raises(AnnotationError):
        read_voc(b"<annotation><object><name>x</name></object>")


def test_coco_reader_picks_the_named_image() -> None:
    [box] = read_coco(coco("images/photo.jpg"), "photo.jpg")
    assert (box.name, box.left, box.top, box.width, box.height) == ("fork", 0.5, 0.25, 0.25, 0.5)
    with pytest.raises(AnnotationError):
        read_coco(b'{"images": []}', "photo.jpg")
