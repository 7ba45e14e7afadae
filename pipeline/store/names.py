"""Name claims: the `names` table, which makes "one name, one owner" atomic within a scope (all projects; the tags
or the iterations of one project).

One row per claimed name: PartitionKey = the scope, RowKey = the SHA-256 of the name as the caller normalised it
(names may hold characters a RowKey cannot), `owner` = the id of the project, tag or iteration that bears it. The
insert is the uniqueness check: of parallel claims of one name exactly one insert succeeds. The rules about stale
claims (an owner that died midway) belong to the caller, `pipeline.services.names`.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from pipeline.store.account import StorageAccount
from pipeline.store.entities import delete_if_unchanged, replace_if_unchanged

TABLE = "names"


@dataclass(frozen=True)
class NameClaim:
    """Who holds a name, and since when (to tell a create in flight from one that died midway)."""

    owner: str
    etag: str
    claimed_at: datetime


class NameClaims:
    def __init__(self, account: StorageAccount, scope: str) -> None:
        self.table = account.table(TABLE)
        self.scope = scope

    @staticmethod
    def _row(name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()

    def _entity(self, name: str, owner: str) -> dict[str, str]:
        return {"PartitionKey": self.scope, "RowKey": self._row(name), "owner": owner, "name": name}

    def claim(self, name: str, owner: str) -> NameClaim | None:
        """Claim `name` for `owner`: None once it is theirs, else the claim that holds it (possibly `owner`'s)."""
        while True:
            try:
                self.table.create_entity(self._entity(name, owner))
                return None
            except ResourceExistsError:
                holder = self.holder(name)
            if holder is not None:
                return holder  # else it was released between the insert and the read: insert again

    def holder(self, name: str) -> NameClaim | None:
        try:
            entity = self.table.get_entity(self.scope, self._row(name))
        except ResourceNotFoundError:
            return None
        return NameClaim(entity["owner"], entity.metadata["etag"], entity.metadata["timestamp"])

    def take_over(self, name: str, claim: NameClaim, owner: str) -> bool:
        """Give a stale claim to `owner`, only if nobody changed it since `claim` was read."""
        return replace_if_unchanged(self.table, self._entity(name, owner), claim.etag)

    def release(self, name: str, owner: str) -> None:
        """Drop `owner`'s claim on `name`; a claim someone else holds (taken over) is left alone."""
        claim = self.holder(name)
        if claim is not None and claim.owner == owner:
            delete_if_unchanged(self.table, self.scope, self._row(name), claim.etag)

    def release_all(self) -> None:
        """Drop every claim of the scope (its project is being deleted)."""
        for entity in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": self.scope}):
            with contextlib.suppress(ResourceNotFoundError):
                self.table.delete_entity(self.scope, entity["RowKey"])
