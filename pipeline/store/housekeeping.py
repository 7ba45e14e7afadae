"""Listing and deleting by project across every table and container: what DeleteProject and the sweeper need.

Everything a project owns lives in a partition named by its id (`images`, `imagehashes`, `tags`, `iterations`,
`predictions`, `suggestions`) or under a blob folder `{project}/{owner}/...` (`images`, `models`, `predictions`, where the owner is
the image, iteration or prediction id), or `{project}/{file}` (`projectexports`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from pipeline.store import exports, images, iterations, predictions, project_exports, suggestions, tags
from pipeline.store.account import StorageAccount

# In deletion order: the image rows first, so a project's images disappear before anything they point at.
PROJECT_TABLES = (
    images.TABLE,
    images.COUNTS_TABLE,
    images.HASH_TABLE,
    tags.TABLE,
    iterations.TABLE,
    exports.TABLE,
    predictions.TABLE,
    suggestions.TABLE,
)
PROJECT_CONTAINERS = (
    images.CONTAINER,
    iterations.CONTAINER,
    exports.CONTAINER,
    predictions.CONTAINER,
    project_exports.CONTAINER,
)
_DELETE_WORKERS = 8  # deletions are independent round trips


@dataclass(frozen=True)
class StoredBlob:
    container: str
    name: str
    last_modified: datetime

    @property
    def owner_id(self) -> str:
        """The image, iteration or prediction the blob belongs to (the folder below the project's)."""
        parts = self.name.split("/")
        return parts[1] if len(parts) > 2 else ""


def _partition_keys(table: TableClient) -> set[str]:
    """Distinct partition keys, one request per partition: each query asks for the first row past the last key."""
    keys: set[str] = set()
    after = ""
    while True:
        rows = table.query_entities(
            "PartitionKey gt @after", parameters={"after": after}, select=["PartitionKey"], results_per_page=1
        )
        row = next(iter(rows), None)  # follows continuations past empty pages, never further
        if row is None:
            return keys
        after = row["PartitionKey"]
        keys.add(after)


class Housekeeping:
    def __init__(self, account: StorageAccount) -> None:
        self.account = account

    def project_ids(self) -> set[str]:
        """Every project id that owns a row or a blob folder, whether or not its project row exists."""
        ids: set[str] = set()
        for name in PROJECT_TABLES:
            ids |= _partition_keys(self.account.table(name))
        for name in PROJECT_CONTAINERS:
            for item in self.account.container(name).walk_blobs(delimiter="/"):
                if item.name.endswith("/"):
                    ids.add(item.name.rstrip("/"))
        return ids

    def blobs(self, container: str, project_id: str) -> Iterator[StoredBlob]:
        for blob in self.account.container(container).list_blobs(name_starts_with=f"{project_id}/"):
            yield StoredBlob(container, blob.name, blob.last_modified)

    def delete_blobs(self, blobs: list[StoredBlob]) -> None:
        def delete(blob: StoredBlob) -> None:
            with contextlib.suppress(ResourceNotFoundError):
                self.account.container(blob.container).delete_blob(blob.name)

        self._each(delete, blobs)

    def purge(self, project_id: str) -> None:
        """Every row in the project's partitions, then every blob in its folders. Idempotent: a crash midway is
        finished by running it again."""
        for name in PROJECT_TABLES:
            table = self.account.table(name)
            keys = [
                row["RowKey"]
                for row in table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": project_id}, select=["RowKey"]
                )
            ]

            def delete(key: str, table: TableClient = table) -> None:
                with contextlib.suppress(ResourceNotFoundError):
                    table.delete_entity(project_id, key)

            self._each(delete, keys)
        for name in PROJECT_CONTAINERS:
            self.delete_blobs(list(self.blobs(name, project_id)))

    @staticmethod
    def _each(action, items: list) -> None:
        if not items:
            return
        with ThreadPoolExecutor(max_workers=min(_DELETE_WORKERS, len(items))) as pool:
            list(pool.map(action, items))
