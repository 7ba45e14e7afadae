"""Loading a training set from storage: the same selection the train request validated, images in parallel."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from pipeline.contract.training import chosen_tags, training_set
from pipeline.store import StorageAccount
from pipeline.store.image_index import tag_view
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord, IterationRecord, TagRecord
from pipeline.store.tags import TagStore


@dataclass(frozen=True)
class LoadedImage:
    record: ImageRecord
    image: Image.Image


@dataclass(frozen=True)
class TrainingData:
    images: list[LoadedImage]
    tags: list[TagRecord]


def load_training_data(account: StorageAccount, iteration: IterationRecord, workers: int = 8) -> TrainingData:
    """Images with at least one of the iteration's tags, decoded from their stored (already normalised) copies.
    The index's tag views name them, so loading costs the training set, not the project."""
    store = ImageStore(account)
    tags = chosen_tags(TagStore(account).list(iteration.project_id), iteration.selected_tag_ids)
    ids = list(
        store.index(iteration.project_id).stream_union([tag_view(t.id) for t in tags], newest_first=True)
    )
    records, tags = training_set(store.get_many(iteration.project_id, ids), tags, [])

    def load(record: ImageRecord) -> LoadedImage:
        image = Image.open(io.BytesIO(store.read_blob(record.resized_blob)))
        return LoadedImage(record, image.convert("RGB"))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        loaded = list(pool.map(load, records))
    return TrainingData(loaded, tags)
