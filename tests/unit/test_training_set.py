"""The training set a request validates and the job loads."""

from __future__ import annotations

import random

from pipeline.contract.training import training_set
from pipeline.store.records import ImageRecord, ImageTagRecord, TagRecord


def _image(number: int, tag: str) -> ImageRecord:
    return ImageRecord(
        id=f"id-{random.random()}",  # ids are random GUIDs: the order must not depend on them
        project_id="p",
        width=1,
        height=1,
        content_hash=f"{number:04d}",
        original_blob="o",
        resized_blob="r",
        thumbnail_blob="t",
        tags=[ImageTagRecord(tag_id=tag)],
    )


def test_the_same_pictures_come_in_the_same_order_whatever_their_ids():
    """Folds, batches and augmentations follow the images' order, so it depends on the pictures only: the same
    images train the same model."""
    tags = [TagRecord(id="a", project_id="p", name="a"), TagRecord(id="b", project_id="p", name="b")]
    images = [_image(n, "a" if n % 2 else "b") for n in range(12)]
    orders = set()
    for seed in range(5):
        shuffled = random.Random(seed).sample(images, len(images))
        renamed = [i.model_copy(update={"id": f"id-{random.random()}"}) for i in shuffled]
        chosen, _ = training_set(renamed, tags, [])
        orders.add(tuple(i.content_hash for i in chosen))
    assert orders == {tuple(f"{n:04d}" for n in range(12))}
    only_a, chosen_tags = training_set(images, tags, ["a"])
    assert [t.id for t in chosen_tags] == ["a"] and all("a" in i.tag_ids for i in only_a)
