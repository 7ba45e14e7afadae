"""Images: a row per image in `images` (tags and regions inline), indexed in `imagecounts`
(pipeline.store.image_index), blobs under `images/{project}/{image}/`, and `imagehashes` rows that make
duplicate detection atomic (insert-if-absent on the content hash)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError
from azure.storage.blob import ContentSettings

from pipeline.core.owners import this_process
from pipeline.store.account import StorageAccount
from pipeline.store.entities import (
    delete_if_unchanged,
    from_entity,
    get_record,
    query_records,
    replace_if_unchanged,
    to_entity,
    unchanged_since,
)
from pipeline.store.image_index import (
    ALL,
    IMAGE_ROWS,
    SNAPSHOT_MARK,
    VERSION,
    VERSION_ROW,
    Deltas,
    ImageIndex,
    tag_view,
)
from pipeline.store.image_reconcile import ReconcileReport, reconcile
from pipeline.store.records import ImageRecord

TABLE = "images"
HASH_TABLE = "imagehashes"
COUNTS_TABLE = "imagecounts"  # the image index (see image_index)
CONTAINER = "images"
UPLOADS_CONTAINER = "uploads"
_READERS = 8  # point reads at once for a page of images
# Reads of this many images or more scan the partition when they are most of the project: a query answers up to
# 1,000 rows a request where a point read answers one (245 of a project's 245 images: 0.04 s of the reader's CPU
# instead of 0.5 s, against Azurite).
SCAN_FROM = 100
_ATTEMPTS = 32
_BACKOFF_SECONDS = 0.02
# Projects whose partition is known to be indexed: once indexed, a partition stays so (project ids are never reused).
_INDEXED: set[str] = set()


@dataclass(frozen=True)
class HashClaim:
    """Who holds a content hash, since when, and which process wrote it (to tell an upload in flight from one
    that died midway)."""

    image_id: str
    etag: str
    claimed_at: datetime
    # `host:pid` (pipeline.core.owners); None on claims written before owners were kept.
    owner: str | None = None


def _claim_entity(project_id: str, content_hash: str, image_id: str) -> dict[str, str]:
    return {"PartitionKey": project_id, "RowKey": content_hash, "image_id": image_id, "owner": this_process()}


def _claim(entity: dict) -> HashClaim:
    return HashClaim(
        entity["image_id"], entity.metadata["etag"], entity.metadata["timestamp"], entity.get("owner")
    )


class ImageStore:
    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self.table = account.table(TABLE)
        self.hashes = account.table(HASH_TABLE)
        self.counts = account.table(COUNTS_TABLE)
        self.container = account.container(CONTAINER)

    def claim_hash(self, project_id: str, content_hash: str, image_id: str) -> str | None:
        """Reserve `content_hash` for `image_id`; return the id that already holds it, or None if claimed."""
        try:
            self.hashes.create_entity(_claim_entity(project_id, content_hash, image_id))
            return None
        except ResourceExistsError:
            return self.hashes.get_entity(project_id, content_hash)["image_id"]

    def hash_claim(self, project_id: str, content_hash: str) -> HashClaim | None:
        try:
            return _claim(self.hashes.get_entity(project_id, content_hash))
        except ResourceNotFoundError:
            return None

    def hash_claims(self, project_id: str) -> Iterator[tuple[str, HashClaim]]:
        """(content hash, claim) for every claim in the project."""
        for entity in self.hashes.query_entities("PartitionKey eq @pk", parameters={"pk": project_id}):
            yield entity["RowKey"], _claim(entity)

    def take_over_hash(self, project_id: str, content_hash: str, claim: HashClaim, image_id: str) -> bool:
        """Point a stale claim at `image_id`, only if nobody changed it since `claim` was read."""
        return replace_if_unchanged(
            self.hashes, _claim_entity(project_id, content_hash, image_id), claim.etag
        )

    def drop_claim(self, project_id: str, content_hash: str, claim: HashClaim) -> bool:
        """Delete a stale claim, only if nobody changed it since `claim` was read."""
        return delete_if_unchanged(self.hashes, project_id, content_hash, claim.etag)

    def release_hash(self, project_id: str, content_hash: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.hashes.delete_entity(project_id, content_hash)

    def put_blob(self, name: str, data: bytes, content_type: str) -> None:
        self.container.upload_blob(
            name, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    def read_blob(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def delete_blobs(self, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(name)

    def blob_url(self, name: str, hours: int = 24) -> str:
        return self.account.read_url(CONTAINER, name, hours=hours)

    def index(self, project_id: str) -> ImageIndex:
        """The project's index, migrated first if its partition predates it (see image_index)."""
        if project_id not in _INDEXED:
            if _version(self.table, project_id) < VERSION:
                reconcile(self.table, self.counts, project_id)
            _INDEXED.add(project_id)
        return ImageIndex(self.table, self.counts, project_id)

    def reconcile(self, project_id: str) -> ReconcileReport:
        """Make the project's index agree with its image rows (see image_reconcile)."""
        _INDEXED.add(project_id)
        return reconcile(self.table, self.counts, project_id)

    def snapshot(self, project_id: str, iteration_id: str) -> ImageIndex:
        """The training set an iteration was trained on (empty until its training job wrote it)."""
        return ImageIndex.snapshot(self.table, self.counts, project_id, iteration_id)

    def write_snapshot(self, project_id: str, iteration_id: str, images: Iterable[ImageRecord]) -> None:
        """Record an iteration's training set: its marker first, so the sweeper finds whatever a crash leaves."""
        self.table.upsert_entity({"PartitionKey": project_id, "RowKey": f"{SNAPSHOT_MARK}{iteration_id}"})
        self.snapshot(project_id, iteration_id).write_all(images)

    def snapshot_ids(self, project_id: str) -> list[str]:
        """The iterations with a snapshot (or the start of one)."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": project_id, "low": SNAPSHOT_MARK, "high": SNAPSHOT_MARK[:-1] + "/"},
            select=["RowKey"],
        )
        return [row["RowKey"][len(SNAPSHOT_MARK) :] for row in rows]

    def drop_snapshot(self, project_id: str, iteration_id: str) -> None:
        self.snapshot(project_id, iteration_id).drop()
        with contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(project_id, f"{SNAPSHOT_MARK}{iteration_id}")

    def insert(self, image: ImageRecord, index: bool = True) -> ImageRecord:
        """The image row, then its index rows, unless the caller indexes a whole batch at once (`index=False`,
        then `indexed_as_new`). `image.seq` comes from `index(...).reserve`."""
        self.table.create_entity(to_entity(image, image.project_id, image.id))
        if index:
            image_index = self.index(image.project_id)
            image_index.apply(image_index.change(None, image))
        return image

    def indexed_as_new(self, project_id: str, images: Iterable[ImageRecord]) -> None:
        """Index images inserted with `index=False`, as one update."""
        index = self.index(project_id)
        deltas = Deltas()
        for image in images:
            deltas.update(index.change(None, image))
        index.apply(deltas)

    def get(self, project_id: str, image_id: str) -> ImageRecord | None:
        if image_id.startswith("~"):
            return None
        return get_record(self.table, ImageRecord, project_id, image_id)

    def get_many(self, project_id: str, image_ids: Sequence[str]) -> list[ImageRecord]:
        """The images that exist, in the order of `image_ids`: point reads, several at a time, unless they are
        at least SCAN_FROM and half of the project's images, which are read by a scan of its image rows."""
        if len(image_ids) >= SCAN_FROM and 2 * len(image_ids) >= self.index(project_id).total(ALL):
            wanted = set(image_ids)
            found = {image.id: image for image in self.iter(project_id) if image.id in wanted}
            return [found[image_id] for image_id in image_ids if image_id in found]
        with ThreadPoolExecutor(max_workers=_READERS) as pool:
            found = pool.map(lambda image_id: self.get(project_id, image_id), image_ids)
            return [image for image in found if image is not None]

    def list(self, project_id: str) -> list[ImageRecord]:
        return list(self.iter(project_id))

    def iter(self, project_id: str) -> Iterable[ImageRecord]:
        """Every image row of the project (a scan: for background work, not for requests)."""
        return query_records(self.table, ImageRecord, project_id, row_filter=IMAGE_ROWS)

    def with_id_prefixes(self, project_id: str, prefixes: Iterable[str]) -> Iterator[ImageRecord]:
        """The images whose ids start with any of `prefixes` (a key-range read each)."""
        for prefix in sorted(set(prefixes)):
            upper = prefix + "~"
            yield from query_records(
                self.table,
                ImageRecord,
                project_id,
                row_filter="RowKey ge @low and RowKey lt @high",
                parameters={"low": prefix, "high": upper},
            )

    def ids(self, project_id: str) -> set[str]:
        rows = self.table.query_entities(
            f"PartitionKey eq @pk and {IMAGE_ROWS}", parameters={"pk": project_id}, select=["RowKey"]
        )
        return {row["RowKey"] for row in rows}

    def count(self, project_id: str) -> int:
        return self.index(project_id).total(ALL)

    def update(
        self, project_id: str, image_id: str, mutate: Callable[[ImageRecord], ImageRecord | None]
    ) -> ImageRecord | None:
        """Read, apply `mutate`, and write the image only if nobody wrote it in between (ETag; a lost race is
        retried), then its index changes. None when the image does not exist."""
        index = self.index(project_id)
        for attempt in range(_ATTEMPTS):
            entity = self._entity(project_id, image_id)
            if entity is None:
                return None
            current = from_entity(ImageRecord, entity)
            updated = mutate(current)
            if updated is None:
                return current
            write = ("update", to_entity(updated, project_id, image_id), unchanged_since(entity))
            if self._transact([write], attempt):
                index.apply(index.change(current, updated))
                return updated
        raise RuntimeError(f"could not update image {project_id}/{image_id}: too many concurrent writers")

    def delete(self, image: ImageRecord) -> None:
        """Row first (so the image disappears at once), then its index rows, the hash claim and the blobs; the
        sweeper removes what a crash in between leaves."""
        index = self.index(image.project_id)
        for attempt in range(_ATTEMPTS):
            entity = self._entity(image.project_id, image.id)
            if entity is None:
                return
            current = from_entity(ImageRecord, entity)
            unchanged = {"etag": entity.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
            remove = ("delete", {"PartitionKey": image.project_id, "RowKey": image.id}, unchanged)
            if self._transact([remove], attempt):
                index.apply(index.change(current, None))
                break
        else:
            raise RuntimeError(
                f"could not delete image {image.project_id}/{image.id}: too many concurrent writers"
            )
        self.release_hash(image.project_id, image.content_hash)
        self.delete_blobs((image.original_blob, image.resized_blob, image.thumbnail_blob))

    def tag_counts(self, project_id: str) -> dict[str, int]:
        """How many images carry each tag (whole-image or by region), from the counters."""
        prefix = tag_view("")
        totals = self.index(project_id).totals()
        return {view[len(prefix) :]: n for view, n in totals.items() if view.startswith(prefix) and n}

    def _entity(self, project_id: str, image_id: str) -> Any | None:
        try:
            return self.table.get_entity(project_id, image_id)
        except ResourceNotFoundError:
            return None

    def _transact(self, operations: list[tuple[Any, ...]], attempt: int) -> bool:
        """Submit; False when the image changed since it was read (pause, then read again)."""
        try:
            self.table.submit_transaction(operations)
            return True
        except TableTransactionError as error:
            if error.status_code not in (404, 412):
                raise
            time.sleep(random.uniform(0, _BACKOFF_SECONDS * (attempt + 1)))
            return False


def _version(table: TableClient, project_id: str) -> int:
    """The index layout the partition is in (0: not indexed)."""
    try:
        return int(table.get_entity(project_id, VERSION_ROW).get("version", 1))
    except ResourceNotFoundError:
        return 0


class UploadStore:
    """The `uploads` drop folder: files land at `{project}/{tag}/{file}`; bad ones move under `rejected/`."""

    def __init__(self, account: StorageAccount) -> None:
        self.container = account.container(UPLOADS_CONTAINER)

    def put(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.container.upload_blob(
            name, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    def delete(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.container.delete_blob(name)

    def names(self, prefix: str = "") -> list[str]:
        return [blob.name for blob in self.container.list_blobs(name_starts_with=prefix or None)]

    def read(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()
