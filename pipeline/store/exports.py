"""Exports: the `exports` table (partitioned by project, one row per iteration, platform, flavor and precision)
and the exported files in the `exports` container, under `{project}/{iteration}/`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from pipeline.store.account import StorageAccount
from pipeline.store.entities import get_record, property_values, query_records, to_entity, update_record
from pipeline.store.records import ExportRecord

TABLE = "exports"
CONTAINER = "exports"


def export_blob_name(record: ExportRecord, file: str) -> str:
    """`{project}/{iteration}/{platform}-{flavor}-{precision}/{request}/{file}`: DeleteIteration and DeleteProject
    find it by its project and iteration, like a model's artefacts. Each run writes its own file, so a file never
    changes once written: the Prediction API caches a served export by its name (Seer's INT8 serving mode), and
    exporting again must not change what an iteration published before serves."""
    kind = f"{record.platform}-{record.flavor or 'default'}-{record.precision}"
    return f"{record.project_id}/{record.iteration_id}/{kind}/{record.request_id}/{file}"


class ExportStore:
    def __init__(self, account: StorageAccount) -> None:
        self.table = account.table(TABLE)
        self.container = account.container(CONTAINER)

    def create(self, record: ExportRecord) -> bool:
        """Write a new row; False when the kind of export already has one."""
        try:
            self.table.create_entity(to_entity(record, record.project_id, record.row_key))
        except ResourceExistsError:
            return False
        return True

    def get(self, project_id: str, row_key: str) -> ExportRecord | None:
        return get_record(self.table, ExportRecord, project_id, row_key)

    def named_blobs(self, project_id: str) -> set[str]:
        """The files the project's export rows name (Done ones, and those being exported again)."""
        return property_values(self.table, project_id, "blob")

    def list(self, project_id: str, iteration_id: str) -> list[ExportRecord]:
        """The iteration's exports, oldest request first."""
        rows = query_records(
            self.table,
            ExportRecord,
            project_id,
            row_filter="RowKey ge @low and RowKey lt @high",
            parameters={"low": f"{iteration_id}.", "high": f"{iteration_id}/"},
        )
        return sorted(rows, key=lambda r: r.requested)

    def update(
        self, project_id: str, row_key: str, mutate: Callable[[ExportRecord], ExportRecord | None]
    ) -> ExportRecord | None:
        return update_record(self.table, ExportRecord, project_id, row_key, mutate)

    def put_file(self, name: str, data: bytes | BinaryIO) -> None:
        self.container.upload_blob(name, data, overwrite=True)

    def stream(self, name: str) -> Iterator[bytes]:
        """The blob's bytes in chunks; ResourceNotFoundError at once when it is gone."""
        return self.container.download_blob(name).chunks()

    def delete_iteration(self, project_id: str, iteration_id: str) -> None:
        """Rows first, then the files (the sweeper removes files a crash in between leaves without an
        iteration)."""
        for record in self.list(project_id, iteration_id):
            with contextlib.suppress(ResourceNotFoundError):
                self.table.delete_entity(project_id, record.row_key)
        for blob in self.container.list_blobs(name_starts_with=f"{project_id}/{iteration_id}/"):
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(blob.name)
