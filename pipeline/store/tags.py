"""Tags: the `tags` table, partitioned by project."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.store.account import StorageAccount
from pipeline.store.entities import get_record, query_records, to_entity, update_record
from pipeline.store.records import TagRecord

TABLE = "tags"


class TagStore:
    def __init__(self, account: StorageAccount) -> None:
        self.table = account.table(TABLE)

    def create(self, tag: TagRecord) -> TagRecord:
        self.table.create_entity(to_entity(tag, tag.project_id, tag.id))
        return tag

    def get(self, project_id: str, tag_id: str) -> TagRecord | None:
        return get_record(self.table, TagRecord, project_id, tag_id)

    def list(self, project_id: str) -> list[TagRecord]:
        return sorted(query_records(self.table, TagRecord, project_id), key=lambda t: t.created)

    def update(
        self, project_id: str, tag_id: str, mutate: Callable[[TagRecord], TagRecord | None]
    ) -> TagRecord | None:
        return update_record(self.table, TagRecord, project_id, tag_id, mutate)

    def delete(self, project_id: str, tag_id: str) -> None:
        self.table.delete_entity(project_id, tag_id)
