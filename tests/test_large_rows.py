"""Rows past one table property (64 KiB): 300 regions per image, a full tag list, a stored prediction's boxes."""

from __future__ import annotations

import json
import uuid

from pipeline.core.limits import MAX_TAGS_PER_IMAGE
from pipeline.core.vocabulary import new_id
from pipeline.store.entities import to_entity
from pipeline.store.images import ImageStore
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import PredictedTag, PredictionRecord
from tests.images import make_image

DETECTION_DOMAIN = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"


def _grid(count: int, tag_ids: list[str]) -> list[tuple[str, float, float, float, float]]:
    """`count` distinct boxes inside the image, tags taken in turn: (tag, left, top, width, height)."""
    return [
        (tag_ids[i % len(tag_ids)], (i % 20) / 20 + 0.001 * (i % 7), (i // 20) / 20, 0.04, 0.0375)
        for i in range(count)
    ]


def _as_tuples(regions) -> list[tuple[str, float, float, float, float]]:
    return sorted((r.tag_id, r.left, r.top, r.width, r.height) for r in regions)


def test_300_regions_round_trip_and_the_301st_is_refused(trainer, settings):
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageFileCreateBatch,
        ImageFileCreateEntry,
        ImageRegionCreateEntry,
        Region,
    )

    limit = settings.max_regions_per_image
    project = trainer.create_project(f"regions-{uuid.uuid4()}", domain_id=DETECTION_DOMAIN)
    tag_ids = [trainer.create_tag(project.id, f"part-{i}").id for i in range(3)]
    boxes = _grid(limit + 1, tag_ids)
    regions = [Region(tag_id=t, left=x, top=y, width=w, height=h) for t, x, y, w, h in boxes]

    def entry(seed: int, count: int) -> ImageFileCreateEntry:
        return ImageFileCreateEntry(
            name=f"{seed}.jpg", contents=make_image(seed=seed), regions=regions[:count]
        )

    batch = ImageFileCreateBatch(images=[entry(1, limit), entry(2, limit + 1), entry(3, 0)])
    full, over, bare = trainer.create_images_from_files(project.id, batch).images
    assert (full.status, over.status, bare.status) == ("OK", "ErrorRegionLimitExceed", "OK")
    [stored] = trainer.get_images_by_ids(project.id, image_ids=[full.image.id])
    assert _as_tuples(stored.regions) == sorted(boxes[:limit])

    # CreateImageRegions, 64 at a time, up to the limit on the bare image; one more is reported as exceeded.
    for start in range(0, limit, 64):
        chunk = [
            ImageRegionCreateEntry(image_id=bare.image.id, tag_id=t, left=x, top=y, width=w, height=h)
            for t, x, y, w, h in boxes[start : min(start + 64, limit)]
        ]
        summary = trainer.create_image_regions(project.id, regions=chunk)
        assert len(summary.created) == len(chunk)
    t, x, y, w, h = boxes[limit]
    last = ImageRegionCreateEntry(image_id=bare.image.id, tag_id=t, left=x, top=y, width=w, height=h)
    summary = trainer.create_image_regions(project.id, regions=[last])
    assert (len(summary.created), len(summary.exceeded)) == (0, 1)
    [filled] = trainer.get_images_by_ids(project.id, image_ids=[bare.image.id])
    assert _as_tuples(filled.regions) == sorted(boxes[:limit])
    counts = {t.id: t.image_count for t in trainer.get_tags(project.id)}
    assert counts == dict.fromkeys(tag_ids, 2)


def test_an_image_carries_the_most_tags_allowed(trainer):
    from azure.cognitiveservices.vision.customvision.training.models import ImageTagCreateEntry

    project = trainer.create_project(f"many-tags-{uuid.uuid4()}")
    long_names = [f"{i:02d}-" + "t" * 250 for i in range(MAX_TAGS_PER_IMAGE + 1)]
    tag_ids = [trainer.create_tag(project.id, name).id for name in long_names]
    [created] = trainer.create_images_from_data(project.id, make_image(seed=4)).images
    image_id = created.image.id
    entries = [ImageTagCreateEntry(image_id=image_id, tag_id=t) for t in tag_ids]
    summary = trainer.create_image_tags(project.id, tags=entries)
    assert (len(summary.created), len(summary.exceeded)) == (MAX_TAGS_PER_IMAGE, 1)
    [image] = trainer.get_images_by_ids(project.id, image_ids=[image_id])
    assert sorted(t.tag_id for t in image.tags) == sorted(tag_ids[:MAX_TAGS_PER_IMAGE])


def test_a_stored_prediction_keeps_all_its_boxes(account):
    """A detector answers up to 200 boxes; a classifier one entry per tag (up to 500): more than one property."""
    project_id = new_id()
    boxes = [
        PredictedTag(
            tag_id=new_id(),
            tag_name=f"{i:03d}-" + "n" * 200,
            probability=1 - i / 1000,
            left=i / 1000,
            top=0.25,
            width=0.125,
            height=0.5,
        )
        for i in range(500)
    ]
    record = PredictionRecord(
        id=new_id(),
        project_id=project_id,
        iteration_id=new_id(),
        domain_id=DETECTION_DOMAIN,
        predictions=boxes,
        original_blob="o",
        resized_blob="r",
        thumbnail_blob="t",
        width=640,
        height=480,
    )
    store = PredictionStore(account)
    store.insert(record)
    _, found = store.find(project_id, record.id)
    assert found == record


def test_rows_written_in_one_property_are_still_read(account):
    """Rows stored before regions could span properties hold one JSON property: they read as before."""
    store = ImageStore(account)
    project_id = new_id()
    image = _image_record(project_id, regions=3)
    entity = to_entity(image, project_id, image.id)
    entity["regions"] = json.dumps([r.model_dump(mode="json") for r in image.regions])  # the old spacing
    store.table.create_entity(entity)
    assert store.get(project_id, image.id) == image
    assert store.tag_counts(project_id) == {"tag": 1}


def _image_record(project_id: str, regions: int):
    from pipeline.store.records import ImageRecord, RegionRecord

    return ImageRecord(
        id=new_id(),
        project_id=project_id,
        width=10,
        height=10,
        content_hash=new_id(),
        original_blob="o",
        resized_blob="r",
        thumbnail_blob="t",
        regions=[
            RegionRecord(id=new_id(), tag_id="tag", left=0.1, top=0.1, width=0.1, height=0.1)
            for _ in range(regions)
        ],
    )
