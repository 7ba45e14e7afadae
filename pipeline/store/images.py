"""Images: a row per image in `images` (tags and regions inline), blobs under `images/{project}/{image}/`,
and `imagehashes` rows that make duplicate detection atomic (insert-if-absent on the content hash)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterable

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from pipeline.store.account import StorageAccount
from pipeline.store.entities import get_record, query_records, to_entity, update_record
from pipeline.store.records import ImageRecord

TABLE = "images"
HASH_TABLE = "imagehashes"
CONTAINER = "images"


class ImageStore:
    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self.table = account.table(TABLE)
        self.hashes = account.table(HASH_TABLE)
        self.container = account.container(CONTAINER)

    def claim_hash(self, project_id: str, content_hash: str, image_id: str) -> str | None:
        """Reserve `content_hash` for `image_id`; return the id that already holds it, or None if claimed."""
        try:
            self.hashes.create_entity(
                {"PartitionKey": project_id, "RowKey": content_hash, "image_id": image_id}
            )
            return None
        except ResourceExistsError:
            return self.hashes.get_entity(project_id, content_hash)["image_id"]

    def release_hash(self, project_id: str, content_hash: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.hashes.delete_entity(project_id, content_hash)

    def put_blob(self, name: str, data: bytes, content_type: str) -> None:
        self.container.upload_blob(
            name, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    def read_blob(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

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

    def update(
        self, project_id: str, image_id: str, mutate: Callable[[ImageRecord], ImageRecord | None]
    ) -> ImageRecord | None:
        return update_record(self.table, ImageRecord, project_id, image_id, mutate)

    def delete(self, image: ImageRecord) -> None:
        """Row first (so the image disappears at once), then the hash claim and the blobs."""
        try:
            self.table.delete_entity(image.project_id, image.id)
        except ResourceNotFoundError:
            return
        self.release_hash(image.project_id, image.content_hash)
        for blob in (image.original_blob, image.resized_blob, image.thumbnail_blob):
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(blob)

    def tag_counts(self, project_id: str) -> dict[str, int]:
        """How many images carry each tag (whole-image or by region), from one scan of the tag columns."""
        counts: Counter[str] = Counter()
        rows = self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": project_id}, select=["tags", "regions"]
        )
        for row in rows:
            tag_ids = {t["tag_id"] for t in json.loads(row.get("tags") or "[]")}
            tag_ids |= {r["tag_id"] for r in json.loads(row.get("regions") or "[]")}
            counts.update(tag_ids)
        return dict(counts)
