"""Project export packages (pipeline.contract.project_package): blobs `{project}/{sha256}.json` in the
`projectexports` container, deleted with their project and replaced once their links have expired."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from pipeline.store.account import StorageAccount

CONTAINER = "projectexports"


class ProjectExportStore:
    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self.container = account.container(CONTAINER)

    def put(self, project_id: str, sha256: str, data: bytes) -> str:
        """Stores a package named by its hash (the same export twice is one blob) and returns its name."""
        name = f"{project_id}/{sha256}.json"
        self.container.upload_blob(
            name, data, overwrite=True, content_settings=ContentSettings(content_type="application/json")
        )
        return name

    def read_url(self, name: str, hours: int) -> str:
        return self.account.read_url(CONTAINER, name, hours=hours)

    def drop_older_than(self, project_id: str, age: timedelta) -> None:
        """Packages whose links have all expired serve no one."""
        cutoff = datetime.now(UTC) - age
        for blob in self.container.list_blobs(name_starts_with=f"{project_id}/"):
            if blob.last_modified < cutoff:
                with contextlib.suppress(ResourceNotFoundError):
                    self.container.delete_blob(blob.name)
