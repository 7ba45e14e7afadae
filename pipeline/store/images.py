"""Images: a row per image in `images` (tags and regions inline), blobs under `images/{project}/{image}/`,
and `imagehashes` rows that make duplicate detection atomic (insert-if-absent on the content hash)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from pipeline.core.owners import this_process
from pipeline.store.account import StorageAccount
from pipeline.store.entities import (
    delete_if_unchanged,
    get_record,
    joined,
    part_names,
    query_records,
    replace_if_unchanged,
    to_entity,
    update_record,
)
from pipeline.store.records import ImageRecord

TABLE = "images"
HASH_TABLE = "imagehashes"
CONTAINER = "images"
UPLOADS_CONTAINER = "uploads"


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

    def blob_url(self, name: str) -> str:
        return self.account.read_url(CONTAINER, name)

    def insert(self, image: ImageRecord) -> ImageRecord:
        self.table.create_entity(to_entity(image, image.project_id, image.id))
        return image

    def get(self, project_id: str, image_id: str) -> ImageRecord | None:
        return get_record(self.table, ImageRecord, project_id, image_id)

    def list(self, project_id: str) -> list[ImageRecord]:
        return list(query_records(self.table, ImageRecord, project_id))

    def iter(self, project_id: str) -> Iterable[ImageRecord]:
        return query_records(self.table, ImageRecord, project_id)

    def ids(self, project_id: str) -> set[str]:
        rows = self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": project_id}, select=["RowKey"]
        )
        return {row["RowKey"] for row in rows}

    def first_thumbnail(self, project_id: str) -> str | None:
        """The thumbnail blob of the project's first image in key order, from a one-row read (a project's
        `thumbnailUri` costs the same whatever its size)."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": project_id},
            select=["thumbnail_blob"],
            results_per_page=1,
        )
        return next((row.get("thumbnail_blob") for row in rows), None)

    def count(self, project_id: str) -> int:
        return len(self.ids(project_id))

    def update(
        self, project_id: str, image_id: str, mutate: Callable[[ImageRecord], ImageRecord | None]
    ) -> ImageRecord | None:
        return update_record(self.table, ImageRecord, project_id, image_id, mutate)

    def delete(self, image: ImageRecord) -> None:
        """Row first (so the image disappears at once), then the hash claim and the blobs; the sweeper removes
        what a crash in between leaves."""
        try:
            self.table.delete_entity(image.project_id, image.id)
        except ResourceNotFoundError:
            return
        self.release_hash(image.project_id, image.content_hash)
        self.delete_blobs((image.original_blob, image.resized_blob, image.thumbnail_blob))

    def tag_counts(self, project_id: str) -> dict[str, int]:
        """How many images carry each tag (whole-image or by region), from one scan of the tag columns."""
        counts: Counter[str] = Counter()
        rows = self.table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": project_id},
            select=[*part_names("tags"), *part_names("regions")],
        )
        for row in rows:
            tag_ids = {t["tag_id"] for t in json.loads(joined(row, "tags") or "[]")}
            tag_ids |= {r["tag_id"] for r in json.loads(joined(row, "regions") or "[]")}
            counts.update(tag_ids)
        return dict(counts)


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
