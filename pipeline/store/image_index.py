"""The index that makes image reads cost what their page costs, not what the project holds.

Image rows (row key: the image id, with its sequence number `seq`) live in each project's partition of the `images`
table; the index lives in the same partition of the small `imagecounts` table. A page is made of point reads: the
images of each view are grouped by sequence number into buckets of 1,000, and each bucket's row holds its members.
(Azurite answers every query by filtering its whole table, so a range read of the big images table grows with the
project there, while a point read does not; on Azure both cost their rows.)

| row key (in `imagecounts`)     | properties             | what it is                                                  |
|--------------------------------|------------------------|-------------------------------------------------------------|
| `~b.{view}.{bucket}`           | `n`, `members`         | the view's images among 1,000 consecutive sequence numbers  |
| `~n.{view}`                    | `n`                    | the view's images                                           |
| `~n.labelled`, `~n.revision`   | `n`                    | times an image became tagged; image writes (tallies)        |
| `~seq`                         | `next`                 | the next sequence number (handed out a batch at a time)     |
| `~v` (in `images`)             | `version`              | the partition is indexed in this layout                     |
| `~S.{iteration id}` (`images`) |                        | an iteration's training-set snapshot exists                 |

Views: `all`, `tagged`, `untagged`, `multi` (two tags or more), and `t.{tag id}` per tag. An iteration's training
set is the same structure under the prefix `~s.{iteration id}.` (a snapshot the training job writes). `members` is
binary: 24 bytes a member (its sequence number, then its id's 16 bytes), in sequence order.

Writes: the image row first, then its bucket and total rows in one ETag-checked transaction (concurrent writers
add up). A crash between the two leaves the image out of its views until `image_reconcile` puts it in.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import struct
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode
from pydantic import BaseModel

from pipeline.store.entities import update_record
from pipeline.store.records import ImageRecord

ALL, TAGGED, UNTAGGED, MULTI = "all", "tagged", "untagged", "multi"
# Tallies: counters of events, not of images (reconcile cannot recount them).
LABELLED = "labelled"  # times an image became tagged: what scheduled retraining compares
REVISION = "revision"  # image writes: equal revisions mean the images are as they were
BUCKET = 1000  # sequence numbers per bucket: 24 KB of members, well under a property's 64 KiB
# Rows per entity-group transaction: Azure allows 100 and 4 MiB, and a full bucket row is 32 KB on the wire.
ROWS_PER_TRANSACTION = 50
_BACKOFF_SECONDS = 0.02
_READERS = 8  # index rows read at once
_MEMBER = struct.Struct(">Q16s")  # a bucket member: sequence number, image id
VERSION_ROW = "~v"
VERSION = 2  # 1: index rows `~i.{view}.{key}` beside the image rows, buckets held counts only
SNAPSHOT_MARK = "~S."
IMAGE_ROWS = "RowKey lt '~'"  # a filter for image rows alone

Members = dict[int, str]  # sequence number -> image id


def tag_view(tag_id: str) -> str:
    return f"t.{tag_id}"


def views_of(image: ImageRecord) -> set[str]:
    """The views an image belongs to."""
    tags = image.tag_ids
    views = {ALL, TAGGED if tags else UNTAGGED, *(tag_view(t) for t in tags)}
    if len(tags) > 1:
        views.add(MULTI)
    return views


def encode_members(members: Mapping[int, str]) -> bytes:
    return b"".join(_MEMBER.pack(seq, uuid.UUID(members[seq]).bytes) for seq in sorted(members))


def decode_members(data: bytes | None) -> Members:
    return {seq: str(uuid.UUID(bytes=raw)) for seq, raw in _MEMBER.iter_unpack(data or b"")}


def _upper(prefix: str) -> str:
    """The smallest key after every key that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class _Sequence(BaseModel):
    next: int = 0


@dataclass
class Deltas:
    """What image writes do to the index rows: totals to add to, and bucket members to put in (sequence number ->
    image id) or take out (sequence number -> None). Deltas of several writes merge into one update."""

    totals: Counter[str] = field(default_factory=Counter)
    members: dict[str, dict[int, str | None]] = field(default_factory=dict)

    def update(self, other: Deltas) -> None:
        self.totals.update(other.totals)
        for key, edits in other.members.items():
            self.members.setdefault(key, {}).update(edits)

    def keys(self) -> list[str]:
        return sorted(
            {key for key, delta in self.totals.items() if delta} | {k for k, e in self.members.items() if e}
        )

    def __bool__(self) -> bool:
        return bool(self.keys())


@dataclass
class IndexState:
    """An index's rows as they are (or should be): members per bucket row, and every total but the tallies."""

    members: dict[str, Members] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)


class ImageIndex:
    """One project's index (`prefix` "~"), or an iteration's training-set snapshot (`~s.{iteration}.`)."""

    def __init__(
        self,
        table: TableClient,
        counts: TableClient,
        project_id: str,
        prefix: str = "~",
        bucket: int = BUCKET,
    ) -> None:
        """`table` holds the image rows (and the version mark), `counts` the index rows. `bucket` is fixed for a
        partition's life; only tests choose another."""
        self.table = table
        self.counts = counts
        self.project_id = project_id
        self.prefix = prefix
        self.bucket = bucket

    @classmethod
    def snapshot(
        cls, table: TableClient, counts: TableClient, project_id: str, iteration_id: str
    ) -> ImageIndex:
        return cls(table, counts, project_id, f"~s.{iteration_id}.")

    # --- row keys ---------------------------------------------------------------------------------------------

    def bucket_row(self, view: str, seq: int) -> str:
        return f"{self.prefix}b.{view}.{seq // self.bucket:09d}"

    def total_row(self, view: str) -> str:
        return f"{self.prefix}n.{view}"

    def view_of_bucket_row(self, key: str) -> str:
        return key[len(self.prefix) + 2 :].rsplit(".", 1)[0]

    # --- writes -----------------------------------------------------------------------------------------------

    def change(self, before: ImageRecord | None, after: ImageRecord | None) -> Deltas:
        """The index side of replacing `before` with `after` (None: the image is new, or is being deleted)."""
        old = views_of(before) if before is not None else set()
        new = views_of(after) if after is not None else set()
        deltas = Deltas()
        for view in old - new:
            assert before is not None and before.seq is not None
            deltas.members.setdefault(self.bucket_row(view, before.seq), {})[before.seq] = None
            deltas.totals[self.total_row(view)] -= 1
        for view in new - old:
            assert after is not None and after.seq is not None
            deltas.members.setdefault(self.bucket_row(view, after.seq), {})[after.seq] = after.id
            deltas.totals[self.total_row(view)] += 1
        if TAGGED in new and TAGGED not in old:
            deltas.totals[self.total_row(LABELLED)] += 1
        deltas.totals[self.total_row(REVISION)] += 1
        return deltas

    def apply(self, deltas: Deltas) -> None:
        """Apply `deltas` to the index rows, ETag-checked, in transactions of up to 50 rows (a lost race is
        retried after a random pause that grows with each loss)."""
        keys = deltas.keys()
        for start in range(0, len(keys), ROWS_PER_TRANSACTION):
            self._apply_chunk(keys[start : start + ROWS_PER_TRANSACTION], deltas)

    def _apply_chunk(self, keys: list[str], deltas: Deltas, attempts: int = 64) -> None:
        for attempt in range(attempts):
            current = self._rows(keys)
            operations: list[tuple[Any, ...]] = []
            for key in keys:
                entity = current.get(key)
                row: dict[str, Any] = {"PartitionKey": self.project_id, "RowKey": key}
                if key in deltas.members:
                    members = decode_members(entity.get("members") if entity else None)
                    for seq, image_id in deltas.members[key].items():
                        if image_id is None:
                            members.pop(seq, None)
                        else:
                            members[seq] = image_id
                    row["n"] = len(members)
                    if members:
                        row["members"] = encode_members(members)
                else:
                    row["n"] = (entity["n"] if entity else 0) + deltas.totals[key]
                if entity is None:
                    operations.append(("create", row))
                else:
                    condition = {
                        "mode": UpdateMode.REPLACE,
                        "etag": entity.metadata["etag"],
                        "match_condition": MatchConditions.IfNotModified,
                    }
                    operations.append(("update", row, condition))
            try:
                self.counts.submit_transaction(operations)
                return
            except (TableTransactionError, ResourceModifiedError, ResourceExistsError):
                time.sleep(random.uniform(0, _BACKOFF_SECONDS * (attempt + 1)))
        raise RuntimeError(f"could not update the image index of {self.project_id}: too many writers")

    def _rows(self, keys: Iterable[str]) -> dict[str, Any]:
        """The index rows that exist among `keys` (point reads, several at once)."""

        def read(key: str) -> Any | None:
            try:
                return self.counts.get_entity(self.project_id, key)
            except ResourceNotFoundError:
                return None

        keys = list(keys)
        with ThreadPoolExecutor(max_workers=min(_READERS, len(keys) or 1)) as pool:
            return {key: row for key, row in zip(keys, pool.map(read, keys), strict=True) if row is not None}

    def reserve(self, count: int) -> int:
        """The first of `count` new sequence numbers (an ETag-checked increment of `~seq`)."""
        key = f"{self.prefix}seq"
        first = 0

        def take(sequence: _Sequence) -> _Sequence:
            nonlocal first
            first = sequence.next
            return sequence.model_copy(update={"next": sequence.next + count})

        if update_record(self.counts, _Sequence, self.project_id, key, take) is None:
            # The partition's first images: it is indexed from the start (no process need migrate it).
            self.mark_indexed()
            with contextlib.suppress(ResourceExistsError):
                self.counts.create_entity({"PartitionKey": self.project_id, "RowKey": key, "next": 0})
            update_record(self.counts, _Sequence, self.project_id, key, take)
        return first

    def mark_indexed(self) -> None:
        self.table.upsert_entity({"PartitionKey": self.project_id, "RowKey": VERSION_ROW, "version": VERSION})

    def state_of(self, images: Iterable[ImageRecord]) -> IndexState:
        """The rows an index of exactly `images` has (the tallies aside)."""
        state = IndexState()
        for image in images:
            assert image.seq is not None
            for view in views_of(image):
                state.members.setdefault(self.bucket_row(view, image.seq), {})[image.seq] = image.id
                state.totals[self.total_row(view)] += 1
        return state

    def write_all(self, images: Iterable[ImageRecord]) -> None:
        """Index `images` into an empty index (a snapshot) with absolute rows, so that writing it again, as a
        retried training job does, changes nothing."""
        state = self.state_of(images)
        rows = [
            *(
                {"PartitionKey": self.project_id, "RowKey": key, "n": len(m), "members": encode_members(m)}
                for key, m in state.members.items()
            ),
            *({"PartitionKey": self.project_id, "RowKey": key, "n": n} for key, n in state.totals.items()),
        ]
        for start in range(0, len(rows), ROWS_PER_TRANSACTION):
            chunk = rows[start : start + ROWS_PER_TRANSACTION]
            self.counts.submit_transaction([("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk])

    def drop(self) -> None:
        """Delete every row of this index (a snapshot whose iteration is gone), in transactions."""
        keys = [row["RowKey"] for row in self._range(self.prefix, select=["RowKey"])]
        for start in range(0, len(keys), ROWS_PER_TRANSACTION):
            chunk = keys[start : start + ROWS_PER_TRANSACTION]
            self.counts.submit_transaction(
                [("delete", {"PartitionKey": self.project_id, "RowKey": key}) for key in chunk]
            )

    # --- reads ------------------------------------------------------------------------------------------------

    def total(self, view: str) -> int:
        try:
            return int(self.counts.get_entity(self.project_id, self.total_row(view))["n"])
        except ResourceNotFoundError:
            return 0

    def totals(self) -> dict[str, int]:
        """Every view's count, from one query of the total rows."""
        start = f"{self.prefix}n."
        return {
            row["RowKey"][len(start) :]: int(row["n"]) for row in self._range(start, select=["RowKey", "n"])
        }

    def stored_state(self) -> IndexState:
        """The bucket and total rows as stored (one range read: they sit side by side), the tallies aside."""
        state = IndexState()
        tallies = {self.total_row(LABELLED), self.total_row(REVISION)}
        low = f"{self.prefix}b."
        for row in self._range(low, high=f"{self.prefix}o"):
            key = row["RowKey"]
            if key.startswith(low):
                state.members[key] = decode_members(row.get("members"))
            elif key not in tallies:
                state.totals[key] = int(row["n"])
        return state

    def page(self, view: str, skip: int, take: int, newest_first: bool = True) -> list[str]:
        """Image ids of `view`, `skip` then `take` of them, newest (or oldest) first: the view's bucket counts
        (one read of at most a row per 1,000 images), then point reads of the buckets that hold the page."""
        if take <= 0:
            return []
        buckets = self._buckets(view)
        ids: list[str] = []
        passed = 0
        for number in sorted(buckets, reverse=newest_first):
            if not ids and passed + buckets[number] <= skip:
                passed += buckets[number]
                continue
            members = self._members(view, number)
            ids.extend(members[seq] for seq in sorted(members, reverse=newest_first))
            if len(ids) >= skip - passed + take:
                break
        return ids[skip - passed : skip - passed + take]

    def ids(self, view: str) -> Iterator[str]:
        """Every image id of `view`, newest first (reads a bucket at a time)."""
        return (image_id for _, image_id in self._stream(view, newest_first=True))

    def stream_union(self, views: list[str], newest_first: bool) -> Iterator[str]:
        """The image ids of any of `views`, each once, in order (reads each view a bucket at a time)."""
        streams = [self._stream(view, newest_first) for view in views]
        seen: set[str] = set()
        for _, image_id in heapq.merge(*streams, reverse=newest_first):
            if image_id not in seen:
                seen.add(image_id)
                yield image_id

    def _stream(self, view: str, newest_first: bool) -> Iterator[tuple[int, str]]:
        """(sequence number, image id) of every member of `view`, in order."""
        for number in sorted(self._buckets(view), reverse=newest_first):
            members = self._members(view, number)
            for seq in sorted(members, reverse=newest_first):
                yield seq, members[seq]

    def _buckets(self, view: str) -> dict[int, int]:
        """Bucket number -> members, for the view's non-empty buckets."""
        start = f"{self.prefix}b.{view}."
        return {
            int(row["RowKey"][len(start) :]): int(row["n"])
            for row in self._range(start, select=["RowKey", "n"])
            if row["n"]
        }

    def _members(self, view: str, number: int) -> Members:
        try:
            row = self.counts.get_entity(self.project_id, self.bucket_row(view, number * self.bucket))
        except ResourceNotFoundError:
            return {}
        return decode_members(row.get("members"))

    def _range(self, prefix: str, high: str | None = None, select: list[str] | None = None) -> Iterator[Any]:
        """Index rows whose key starts with `prefix` (or lies from `prefix` up to `high`)."""
        return iter(
            self.counts.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": self.project_id, "low": prefix, "high": high or _upper(prefix)},
                select=select,
            )
        )
