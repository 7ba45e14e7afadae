"""Growing one project fast for bench.scale: image rows written straight through the storage layer, 100 images per
entity-group transaction, indexed once per fill; and tiny distinct images for the uploads that must go through the
API.

Filled images have no blobs (listing only signs URLs for them) and no hash claims (nothing uploads their bytes)."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.data.tables import TableClient
from PIL import Image

from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount
from pipeline.store.entities import to_entity
from pipeline.store.image_index import Deltas, ImageIndex
from pipeline.store.images import COUNTS_TABLE, TABLE
from pipeline.store.records import ImageRecord, ImageTagRecord

log = logging.getLogger("bench.scale")

_TRANSACTION_OPS = 100  # Azure Tables' limit on an entity-group transaction (one partition)
_CHUNK = 10_000  # images built and written at a time
_WRITERS = 4  # transactions in flight at once


def tiny_png(seed: int, side: int = 24) -> bytes:
    """A small PNG of seeded noise: every seed gives different bytes, so no upload is a duplicate."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG")
    return out.getvalue()


def filler_tags(number: int, tag_ids: Sequence[str]) -> list[str]:
    """A third of the filler untagged, the rest spread evenly over `tag_ids`."""
    if number % 3 == 0:
        return []
    return [tag_ids[number % len(tag_ids)]]


def _record(project_id: str, seq: int, tag_ids: list[str]) -> ImageRecord:
    image_id = new_id()
    prefix = f"{project_id}/{image_id}"
    return ImageRecord(
        id=image_id,
        project_id=project_id,
        width=256,
        height=256,
        content_hash=hashlib.sha256(f"bench.scale {project_id} {seq}".encode()).hexdigest(),
        original_blob=f"{prefix}/original.png",
        resized_blob=f"{prefix}/resized.jpg",
        thumbnail_blob=f"{prefix}/thumbnail.jpg",
        tags=[ImageTagRecord(tag_id=t) for t in tag_ids],
        seq=seq,
    )


def _transactions(
    index: ImageIndex, records: list[ImageRecord], deltas: Deltas
) -> Iterator[list[tuple[Any, ...]]]:
    """The images' rows, as the store writes them, in transactions of at most 100; their index changes go into
    `deltas`."""
    for start in range(0, len(records), _TRANSACTION_OPS):
        chunk = records[start : start + _TRANSACTION_OPS]
        for image in chunk:
            deltas.update(index.change(None, image))
        yield [("create", to_entity(image, image.project_id, image.id)) for image in chunk]


def fill(
    account: StorageAccount, project_id: str, count: int, tag_ids: Sequence[str], first_number: int
) -> None:
    """Add `count` untagged or `tag_ids`-tagged images to the project (numbered from `first_number` for the
    tag spread), then index them in one `apply`."""
    table: TableClient = account.table(TABLE)
    index = ImageIndex(table, account.table(COUNTS_TABLE), project_id)
    first_seq = index.reserve(count)
    deltas = Deltas()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        for start in range(0, count, _CHUNK):
            records = [
                _record(project_id, first_seq + k, filler_tags(first_number + k, tag_ids))
                for k in range(start, min(start + _CHUNK, count))
            ]
            list(pool.map(table.submit_transaction, _transactions(index, records, deltas)))
            log.info(
                "filled %d of %d images (%.0f s)", start + len(records), count, time.perf_counter() - started
            )
    index.apply(deltas)
    log.info("filled %d images in %.0f s", count, time.perf_counter() - started)
