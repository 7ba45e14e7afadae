"""Iterations: the `iterations` table (partitioned by project) and their artefacts in the `models` container."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from azure.core.exceptions import ResourceNotFoundError

from pipeline.store.account import StorageAccount
from pipeline.store.entities import get_record, property_values, query_records, to_entity, update_record
from pipeline.store.records import IterationRecord, utcnow

TABLE = "iterations"
CONTAINER = "models"


def artefact_name(project_id: str, iteration_id: str, file: str) -> str:
    return f"{project_id}/{iteration_id}/{file}"


def published_as(
    publish_name: str, resource_id: str, serving: tuple[str, str] | None = None
) -> Callable[[IterationRecord], IterationRecord]:
    """The update that serves an iteration under `publish_name` (PublishIteration, or a better retrain), by its
    own model or, with `serving` (precision, export blob), by that export (Seer's INT8 serving mode)."""
    precision, blob = serving or (None, None)

    def apply(iteration: IterationRecord) -> IterationRecord:
        return iteration.model_copy(
            update={
                "publish_name": publish_name,
                "original_publish_resource_id": resource_id,
                "serving_precision": precision,
                "serving_blob": blob,
                "last_modified": utcnow(),
            }
        )

    return apply


def unpublished(iteration: IterationRecord) -> IterationRecord | None:
    """The update that stops serving an iteration; None (no write) if it is not published."""
    if not iteration.publish_name:
        return None
    return iteration.model_copy(
        update={
            "publish_name": None,
            "original_publish_resource_id": None,
            "serving_precision": None,
            "serving_blob": None,
            "last_modified": utcnow(),
        }
    )


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

    def served_exports(self, project_id: str) -> set[str]:
        """The export files the project's iterations are published to serve (Seer's INT8 serving mode)."""
        return property_values(self.table, project_id, "serving_blob")

    def ids(self, project_id: str) -> set[str]:
        return property_values(self.table, project_id, "RowKey")

    def delete(self, iteration: IterationRecord) -> None:
        """Row first (the iteration is gone at once), then its artefacts; the sweeper removes artefacts that a crash
        in between leaves without a row."""
        with contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(iteration.project_id, iteration.id)
        for blob in self.container.list_blobs(name_starts_with=f"{iteration.project_id}/{iteration.id}/"):
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(blob.name)
