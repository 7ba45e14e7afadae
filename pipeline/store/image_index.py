"""The index that makes image reads cost what their page costs, not what the project holds.

Its rows live in each project's partition of the `images` table, beside the image rows, so that one entity-group
transaction writes an image together with its index rows (they can never disagree); its counters live in the same
partition of the small `imagecounts` table. Image rows have their id as row key; every other key starts with `~`,
which sorts after any id:

| row key                                | properties | what it is                                               |
|----------------------------------------|------------|----------------------------------------------------------|
| `{image id}`                           | the image  | the ImageRecord, with its sequence number `seq`          |
| `~i.{view}.{newest-first key}`         | `image_id` | one row per view the image is in, newest first           |
| `~b.{view}.{bucket}` (in `imagecounts`) | `n`       | the view's rows among 1,000 consecutive sequence numbers |
| `~n.{view}` (in `imagecounts`)         | `n`        | the view's rows                                          |
| `~n.labelled`, `~n.revision` (same)    | `n`        | times an image became tagged; image writes (tallies)     |
| `~seq` (in `imagecounts`)              | `next`     | the next sequence number (handed out a batch at a time)  |
| `~v`                                   | `version`  | present once the partition is indexed                    |
| `~S.{iteration id}`                    |            | an iteration's training-set snapshot exists              |

Views: `all`, `tagged`, `untagged`, `multi` (two tags or more), and `t.{tag id}` per tag. An iteration's training
set is the same structure under the prefix `~s.{iteration id}.` (a snapshot the training job writes).

Paging: `skip` walks the view's bucket counts (one query of at most a row per 1,000 images), then reads at most one
bucket plus the page. Counters change after the transaction that changes the rows (ETag-checked, so concurrent
writers add up); a crash between the two leaves them off until `reconcile` recounts them from the rows.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode
from pydantic import BaseModel

from pipeline.store.entities import update_record
from pipeline.store.records import ImageRecord

ALL, TAGGED, UNTAGGED, MULTI = "all", "tagged", "untagged", "multi"
# Tallies: counters of events, not of rows (reconcile cannot recount them).
LABELLED = "labelled"  # times an image became tagged: what scheduled retraining compares
REVISION = "revision"  # image writes: equal revisions mean the images are as they were
BUCKET = 1000  # sequence numbers per bucket: a bucket's rows fit one query page
_MAX_SEQ = 10**12 - 1
_TRANSACTION_OPS = 100  # Azure Tables' limit on an entity-group transaction
_BACKOFF_SECONDS = 0.02
_READERS = 8  # counter rows read at once
VERSION_ROW = "~v"
IMAGE_ROWS = "RowKey lt '~'"  # a filter for image rows alone


def tag_view(tag_id: str) -> str:
    return f"t.{tag_id}"


def views_of(image: ImageRecord) -> set[str]:
    """The views an image belongs to."""
    tags = image.tag_ids
    views = {ALL, TAGGED if tags else UNTAGGED, *(tag_view(t) for t in tags)}
    if len(tags) > 1:
        views.add(MULTI)
    return views


def newest_first_key(seq: int) -> str:
    return f"{_MAX_SEQ - seq:012d}"


def _upper(prefix: str) -> str:
    """The smallest key after every key that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class _Sequence(BaseModel):
    next: int = 0


@dataclass(frozen=True)
class Change:
    """What writing an image does to the index: row operations for its transaction, then counter deltas."""

    operations: list[tuple[Any, ...]]
    deltas: Counter[str]


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
        """Index rows go to `table` (beside the image rows), counters and the sequence to `counts` (a small table:
        Azurite answers every query by scanning the whole table, so the queries that read counters stay cheap
        there too). `bucket` is fixed for a partition's life; only tests choose another."""
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

    def _row(self, view: str, seq: int) -> str:
        return f"{self.prefix}i.{view}.{newest_first_key(seq)}"

    def _bucket_row(self, view: str, seq: int) -> str:
        return f"{self.prefix}b.{view}.{seq // self.bucket:09d}"

    def total_row(self, view: str) -> str:
        return f"{self.prefix}n.{view}"

    # --- writes -----------------------------------------------------------------------------------------------

    def change(self, before: ImageRecord | None, after: ImageRecord | None) -> Change:
        """The index side of replacing `before` with `after` (None: the image is new, or is being deleted)."""
        old = views_of(before) if before is not None else set()
        new = views_of(after) if after is not None else set()
        operations: list[tuple[Any, ...]] = []
        deltas: Counter[str] = Counter()
        for view in sorted(old - new):
            assert before is not None and before.seq is not None
            operations.append(
                ("delete", {"PartitionKey": self.project_id, "RowKey": self._row(view, before.seq)})
            )
            deltas[self._bucket_row(view, before.seq)] -= 1
            deltas[self.total_row(view)] -= 1
        for view in sorted(new - old):
            assert after is not None and after.seq is not None
            row = {
                "PartitionKey": self.project_id,
                "RowKey": self._row(view, after.seq),
                "image_id": after.id,
            }
            operations.append(("upsert", row, {"mode": UpdateMode.REPLACE}))
            deltas[self._bucket_row(view, after.seq)] += 1
            deltas[self.total_row(view)] += 1
        if TAGGED in new and TAGGED not in old:
            deltas[self.total_row(LABELLED)] += 1
        deltas[self.total_row(REVISION)] += 1
        return Change(operations, deltas)

    def add_counts(self, deltas: Mapping[str, int]) -> None:
        """Add `deltas` to counter rows, ETag-checked, in transactions of up to 100 rows (a lost race is retried
        after a random pause that grows with each loss)."""
        keys = sorted(key for key, delta in deltas.items() if delta)
        for start in range(0, len(keys), _TRANSACTION_OPS):
            self._add_chunk({key: deltas[key] for key in keys[start : start + _TRANSACTION_OPS]})

    def _add_chunk(self, deltas: Mapping[str, int], attempts: int = 64) -> None:
        for attempt in range(attempts):
            current = self._counter_rows(deltas)
            operations = []
            for key, delta in deltas.items():
                entity = current.get(key)
                if entity is None:
                    row = {"PartitionKey": self.project_id, "RowKey": key, "n": delta}
                    operations.append(("create", row))
                else:
                    row = {"PartitionKey": self.project_id, "RowKey": key, "n": entity["n"] + delta}
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
        raise RuntimeError(f"could not update the image counters of {self.project_id}: too many writers")

    def _counter_rows(self, keys: Iterable[str]) -> dict[str, Any]:
        """The counter rows that exist among `keys` (point reads, several at once)."""

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
            self.table.upsert_entity({"PartitionKey": self.project_id, "RowKey": VERSION_ROW, "version": 1})
            with contextlib.suppress(ResourceExistsError):
                self.counts.create_entity({"PartitionKey": self.project_id, "RowKey": key, "next": 0})
            update_record(self.counts, _Sequence, self.project_id, key, take)
        return first

    def write_all(self, images: Iterable[ImageRecord]) -> None:
        """Index `images` into an empty index (a snapshot) with absolute counters, so that writing it again, as
        a retried training job does, changes nothing."""
        operations: list[tuple[Any, ...]] = []
        counts: Counter[str] = Counter()
        tallies = {self.total_row(LABELLED), self.total_row(REVISION)}
        for image in images:
            change = self.change(None, image)
            operations.extend(change.operations)
            counts.update({key: delta for key, delta in change.deltas.items() if key not in tallies})
        counters = [
            ("upsert", {"PartitionKey": self.project_id, "RowKey": key, "n": n}, {"mode": UpdateMode.REPLACE})
            for key, n in counts.items()
        ]
        for table, rows in ((self.table, operations), (self.counts, counters)):
            for start in range(0, len(rows), _TRANSACTION_OPS):
                table.submit_transaction(rows[start : start + _TRANSACTION_OPS])

    # --- reads ------------------------------------------------------------------------------------------------

    def total(self, view: str) -> int:
        try:
            return int(self.counts.get_entity(self.project_id, self.total_row(view))["n"])
        except ResourceNotFoundError:
            return 0

    def totals(self) -> dict[str, int]:
        """Every view's count, from one query of the counter rows."""
        start = f"{self.prefix}n."
        return {
            row["RowKey"][len(start) :]: int(row["n"])
            for row in self._range(start, select=["RowKey", "n"], table=self.counts)
        }

    def page(self, view: str, skip: int, take: int, newest_first: bool = True) -> list[str]:
        """Image ids of `view`, `skip` then `take` of them, newest (or oldest) first."""
        if take <= 0:
            return []
        if newest_first and skip == 0:  # the first page needs no bucket counts
            rows = self._range(f"{self.prefix}i.{view}.", select=["image_id"], page=take)
            return [row["image_id"] for _, row in zip(range(take), rows, strict=False)]
        buckets = self._buckets(view)
        if not newest_first:
            return self._oldest_page(view, buckets, skip, take)
        passed = 0
        for number, count in sorted(buckets.items(), reverse=True):
            if passed + count > skip:
                start = f"{self.prefix}i.{view}.{newest_first_key((number + 1) * self.bucket - 1)}"
                wanted = skip - passed + take
                rows = self._range(f"{self.prefix}i.{view}.", start=start, select=["image_id"], page=wanted)
                return [row["image_id"] for _, row in zip(range(wanted), rows, strict=False)][skip - passed :]
            passed += count
        return []

    def _oldest_page(self, view: str, buckets: Mapping[int, int], skip: int, take: int) -> list[str]:
        ids: list[str] = []
        passed = 0
        for number, count in sorted(buckets.items()):
            if not ids and passed + count <= skip:
                passed += count
                continue
            ids.extend(image_id for _, image_id in reversed(self._bucket_rows(view, number)))
            if len(ids) >= skip - passed + take:
                break
        return ids[skip - passed : skip - passed + take]

    def _bucket_rows(self, view: str, number: int) -> list[tuple[str, str]]:
        """A bucket's (newest-first key, image id) pairs, newest first."""
        start = f"{self.prefix}i.{view}."
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey le @high",
            parameters={
                "pk": self.project_id,
                "low": start + newest_first_key((number + 1) * self.bucket - 1),
                "high": start + newest_first_key(number * self.bucket),
            },
            select=["RowKey", "image_id"],
        )
        return [(row["RowKey"][len(start) :], row["image_id"]) for row in rows]

    def ids(self, view: str) -> Iterator[str]:
        """Every image id of `view`, newest first (reads as it goes)."""
        return (image_id for _, image_id in self._stream(view, newest_first=True))

    def stream_union(self, views: list[str], newest_first: bool) -> Iterator[str]:
        """The image ids of any of `views`, each once, in order (reads each view as it goes)."""
        streams = [self._stream(view, newest_first) for view in views]
        merged = heapq.merge(*streams, reverse=not newest_first)
        seen: set[str] = set()
        for _, image_id in merged:
            if image_id not in seen:
                seen.add(image_id)
                yield image_id

    def _stream(self, view: str, newest_first: bool) -> Iterator[tuple[str, str]]:
        """(newest-first key, image id) of every row of `view`, in order: newest first is the keys' own order;
        oldest first reads bucket by bucket, each reversed."""
        start = f"{self.prefix}i.{view}."
        if newest_first:
            for row in self._range(start, select=["RowKey", "image_id"]):
                yield row["RowKey"][len(start) :], row["image_id"]
            return
        for number in sorted(self._buckets(view)):
            yield from reversed(self._bucket_rows(view, number))

    def drop(self) -> None:
        """Delete every row and counter of this index (a snapshot whose iteration is gone), in transactions."""
        for table in (self.table, self.counts):
            keys = [row["RowKey"] for row in self._range(self.prefix, select=["RowKey"], table=table)]
            for start in range(0, len(keys), _TRANSACTION_OPS):
                chunk = keys[start : start + _TRANSACTION_OPS]
                table.submit_transaction(
                    [("delete", {"PartitionKey": self.project_id, "RowKey": k}) for k in chunk]
                )

    # --- for reconciling (scans of the index, never on a request's path) ----------------------------------------

    def expected_rows(self, image: ImageRecord) -> dict[str, str]:
        """Index row key -> image id, for the rows an indexed image should have."""
        return {operation[1]["RowKey"]: image.id for operation in self.change(None, image).operations}

    def stored_rows(self) -> dict[str, str]:
        """Index row key -> image id, for every index row."""
        return {
            row["RowKey"]: row["image_id"]
            for row in self._range(f"{self.prefix}i.", select=["RowKey", "image_id"])
        }

    def counts_from_rows(self, rows: Iterable[str]) -> Counter[str]:
        """Bucket and total counter values that index rows with these keys make."""
        counts: Counter[str] = Counter()
        start = f"{self.prefix}i."
        for key in rows:
            view, newest_first = key[len(start) :].rsplit(".", 1)
            seq = _MAX_SEQ - int(newest_first)
            counts[self._bucket_row(view, seq)] += 1
            counts[self.total_row(view)] += 1
        return counts

    def stored_counts(self) -> dict[str, int]:
        """Every bucket and total counter, but the tallies (event counts no rows can check)."""
        rows = [
            *self._range(f"{self.prefix}b.", select=["RowKey", "n"], table=self.counts),
            *self._range(f"{self.prefix}n.", select=["RowKey", "n"], table=self.counts),
        ]
        tallies = {self.total_row(LABELLED), self.total_row(REVISION)}
        return {row["RowKey"]: int(row["n"]) for row in rows if row["RowKey"] not in tallies}

    def _buckets(self, view: str) -> dict[int, int]:
        start = f"{self.prefix}b.{view}."
        return {
            int(row["RowKey"][len(start) :]): int(row["n"])
            for row in self._range(start, select=["RowKey", "n"], table=self.counts)
            if row["n"]
        }

    def _range(
        self,
        prefix: str,
        start: str | None = None,
        select: list[str] | None = None,
        page: int = 1000,
        table: TableClient | None = None,
    ) -> Iterator[Any]:
        """Rows of `table` (the index rows' by default) whose key starts with `prefix` (from `start` on), read
        `page` rows a request (1,000 at most)."""
        return iter(
            (table or self.table).query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": self.project_id, "low": start or prefix, "high": _upper(prefix)},
                select=select,
                results_per_page=min(page, 1000),
            )
        )
