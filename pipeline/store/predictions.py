"""Stored predictions: `predictions` table rows keyed newest-first (row key = reversed time + id, so a
partition scan returns the latest first and a row key is a continuation token), images in `predictions` blobs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from pipeline.store.account import StorageAccount
from pipeline.store.entities import from_entity, property_values, to_entity
from pipeline.store.records import PredictionRecord

TABLE = "predictions"
CONTAINER = "predictions"
_MAX_MICROSECONDS = 10**17


def row_key(prediction: PredictionRecord) -> str:
    micros = int(prediction.created.timestamp() * 1_000_000)
    return f"{_MAX_MICROSECONDS - micros:018d}_{prediction.id}"


class PredictionStore:
    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self.table = account.table(TABLE)
        self.container = account.container(CONTAINER)

    def put_blob(self, name: str, data: bytes, content_type: str) -> None:
        self.container.upload_blob(
            name, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    def read_blob(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def blob_url(self, name: str) -> str:
        return self.account.read_url(CONTAINER, name)

    def insert(self, prediction: PredictionRecord) -> PredictionRecord:
        self.table.create_entity(to_entity(prediction, prediction.project_id, row_key(prediction)))
        return prediction

    def newest_first(
        self, project_id: str, after: str | None = None
    ) -> Iterator[tuple[str, PredictionRecord]]:
        """(row key, record) pairs, newest first, strictly after the row key `after` when given."""
        query, parameters = "PartitionKey eq @pk", {"pk": project_id}
        if after:
            query, parameters = query + " and RowKey gt @after", {**parameters, "after": after}
        for entity in self.table.query_entities(query, parameters=parameters):
            yield entity["RowKey"], from_entity(PredictionRecord, entity)

    def find(self, project_id: str, prediction_id: str) -> tuple[str, PredictionRecord] | None:
        """(row key, record) of one prediction; the row key is read back, never recomputed from a timestamp."""
        entities = self.table.query_entities(
            "PartitionKey eq @pk and id eq @id", parameters={"pk": project_id, "id": prediction_id}
        )
        entity = next(iter(entities), None)
        return (entity["RowKey"], from_entity(PredictionRecord, entity)) if entity else None

    def ids(self, project_id: str) -> set[str]:
        return property_values(self.table, project_id, "id")

    def delete(self, key: str, prediction: PredictionRecord) -> None:
        """Row first, then the images; the sweeper removes images that a crash in between leaves."""
        with contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(prediction.project_id, key)
        for blob in (prediction.original_blob, prediction.resized_blob, prediction.thumbnail_blob):
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(blob)
