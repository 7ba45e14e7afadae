"""Iterations: the `iterations` table (partitioned by project) and their artefacts in the `models` container."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from azure.core.exceptions import ResourceNotFoundError

from pipeline.store.account import StorageAccount
from pipeline.store.entities import get_record, query_records, to_entity, update_record
from pipeline.store.records import IterationRecord

TABLE = "iterations"
CONTAINER = "models"


def artefact_name(project_id: str, iteration_id: str, file: str) -> str:
    return f"{project_id}/{iteration_id}/{file}"


class IterationStore:
    def __init__(self, account: StorageAccount) -> None:
        self.table = account.table(TABLE)
        self.container = account.container(CONTAINER)

    def create(self, iteration: IterationRecord) -> IterationRecord:
        self.table.create_entity(to_entity(iteration, iteration.project_id, iteration.id))
        return iteration

    def get(self, project_id: str, iteration_id: str) -> IterationRecord | None:
        return get_record(self.table, IterationRecord, project_id, iteration_id)

    def list(self, project_id: str) -> list[IterationRecord]:
        return sorted(query_records(self.table, IterationRecord, project_id), key=lambda i: i.created)

    def update(
        self, project_id: str, iteration_id: str, mutate: Callable[[IterationRecord], IterationRecord | None]
    ) -> IterationRecord | None:
        return update_record(self.table, IterationRecord, project_id, iteration_id, mutate)

    def put_artefact(self, name: str, data: bytes) -> None:
        self.container.upload_blob(name, data, overwrite=True)

    def read_artefact(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def ids(self, project_id: str) -> set[str]:
        rows = self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": project_id}, select=["RowKey"]
        )
        return {row["RowKey"] for row in rows}

    def delete(self, iteration: IterationRecord) -> None:
        """Row first (the iteration is gone at once), then its artefacts; the sweeper removes artefacts that a crash
        in between leaves without a row."""
        with contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(iteration.project_id, iteration.id)
        for blob in self.container.list_blobs(name_starts_with=f"{iteration.project_id}/{iteration.id}/"):
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(blob.name)
