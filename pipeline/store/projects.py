"""Projects: one row each in the `projects` table (a single partition; there are few projects)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from azure.core.exceptions import ResourceNotFoundError

from pipeline.store.account import StorageAccount
from pipeline.store.entities import get_record, query_records, to_entity, update_record
from pipeline.store.records import ProjectRecord

TABLE = "projects"
PARTITION = "project"


class ProjectStore:
    def __init__(self, account: StorageAccount) -> None:
        self.table = account.table(TABLE)

    def create(self, project: ProjectRecord) -> ProjectRecord:
        self.table.create_entity(to_entity(project, PARTITION, project.id))
        return project

    def get(self, project_id: str) -> ProjectRecord | None:
        return get_record(self.table, ProjectRecord, PARTITION, project_id)

    def list(self) -> list[ProjectRecord]:
        return sorted(query_records(self.table, ProjectRecord, PARTITION), key=lambda p: p.created)

    def find_by_name(self, name: str) -> ProjectRecord | None:
        """The live project with this name (a project being deleted has given its name up)."""
        return next((p for p in self.list() if p.name == name and not p.deleting), None)

    def update(
        self, project_id: str, mutate: Callable[[ProjectRecord], ProjectRecord | None]
    ) -> ProjectRecord | None:
        return update_record(self.table, ProjectRecord, PARTITION, project_id, mutate)

    def delete(self, project_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(PARTITION, project_id)
