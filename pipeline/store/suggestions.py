"""Stored suggestions: the `suggestions` table, partitioned by project, one row per iteration and image (row key
`{iteration}_{image}`, so one iteration's rows are one row-key range). A row's predictions are JSON split across
properties by store.entities, so a detector's many boxes stay under the 64 KiB property limit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from pipeline.store.account import StorageAccount
from pipeline.store.entities import query_records, to_entity
from pipeline.store.records import SuggestionRecord

TABLE = "suggestions"
_AFTER_SEPARATOR = chr(ord("_") + 1)  # the first character past `_`: the end of an iteration's row-key range


def row_key(iteration_id: str, image_id: str) -> str:
    return f"{iteration_id}_{image_id}"


class SuggestionStore:
    def __init__(self, account: StorageAccount) -> None:
        self.table = account.table(TABLE)

    def put(self, suggestion: SuggestionRecord) -> None:
        """Insert or replace: asking again for the same image and iteration keeps the newest answer."""
        entity = to_entity(
            suggestion, suggestion.project_id, row_key(suggestion.iteration_id, suggestion.image_id)
        )
        self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def of_iteration(self, project_id: str, iteration_id: str) -> Iterator[SuggestionRecord]:
        yield from query_records(
            self.table,
            SuggestionRecord,
            project_id,
            row_filter="RowKey gt @low and RowKey lt @high",
            parameters={"low": f"{iteration_id}_", "high": f"{iteration_id}{_AFTER_SEPARATOR}"},
        )

    def keys(self, project_id: str) -> Iterator[tuple[str, str, str]]:
        """(row key, iteration id, image id) of every row of the project."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": project_id},
            select=["RowKey", "iteration_id", "image_id"],
        )
        for row in rows:
            yield row["RowKey"], row["iteration_id"], row["image_id"]

    def delete(self, project_id: str, keys: Iterable[str]) -> int:
        """Delete these rows (a row already gone is no error); how many were asked for."""
        count = 0
        for key in keys:
            with contextlib.suppress(ResourceNotFoundError):
                self.table.delete_entity(project_id, key)
            count += 1
        return count

    def delete_iteration(self, project_id: str, iteration_id: str) -> None:
        self.delete(project_id, [key for key, owner, _ in self.keys(project_id) if owner == iteration_id])

    def delete_images(self, project_id: str, image_ids: Iterable[str]) -> None:
        gone = set(image_ids)
        self.delete(project_id, [key for key, _, image_id in self.keys(project_id) if image_id in gone])
