"""Reconciling a project's image index with its image rows: the migration of a partition written before the index
or in its first layout (images get sequence numbers in creation order; layout-1 index rows become bucket members),
and the proof, run by the sweeper, that the index is exact (what a crash between an image's write and its index
update leaves is corrected here).

It scans the partition, so it runs in the background (or once, lazily, the first time an old partition is used).
It reads the index in one query and reads an image again before taking it out of a view, so an image written
meanwhile stays listed; a counter or member that such a race leaves off (an image deleted meanwhile, put back in
its views) is corrected by the next run, and reads skip members whose image is gone."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from pipeline.store.entities import from_entity, to_entity
from pipeline.store.image_index import (
    IMAGE_ROWS,
    LABELLED,
    ROWS_PER_TRANSACTION,
    TAGGED,
    Deltas,
    ImageIndex,
    IndexState,
    Members,
    encode_members,
    views_of,
)
from pipeline.store.records import ImageRecord

log = logging.getLogger(__name__)

# Layout 1 kept index rows `{prefix}i.{view}.{10^12-1-seq}` in the images table (prefix `~`, or a snapshot's).
_LAYOUT_1_ROW = re.compile(r"(~|~s\.[^.]+\.)i\.(.+)\.(\d{12})")
_LAYOUT_1_MAX_SEQ = 10**12 - 1


@dataclass
class ReconcileReport:
    indexed: int = 0  # images that had no sequence number yet
    converted: int = 0  # layout-1 index rows turned into bucket members
    members_added: int = 0
    members_removed: int = 0
    counters_fixed: int = 0

    @property
    def clean(self) -> bool:
        return not (
            self.indexed
            or self.converted
            or self.members_added
            or self.members_removed
            or self.counters_fixed
        )


def reconcile(table: TableClient, counts: TableClient, project_id: str) -> ReconcileReport:
    """`table` holds the image rows, `counts` the index rows (see image_index)."""
    report = ReconcileReport()
    index = ImageIndex(table, counts, project_id)
    report.converted = _convert_layout_1(table, counts, project_id)
    entities = {
        e["RowKey"]: e
        for e in table.query_entities(f"PartitionKey eq @pk and {IMAGE_ROWS}", parameters={"pk": project_id})
    }
    images = {key: from_entity(ImageRecord, e) for key, e in entities.items()}
    unnumbered = sorted((i for i in images.values() if i.seq is None), key=lambda i: (i.created, i.id))
    if unnumbered:
        first = index.reserve(len(unnumbered))
        for offset, image in enumerate(unnumbered):
            numbered = image.model_copy(update={"seq": first + offset})
            if _number(table, entities[image.id], numbered):
                images[image.id] = numbered
                report.indexed += 1
    wanted = index.state_of(i for i in images.values() if i.seq is not None)
    stored = index.stored_state()
    deltas = _membership_fixes(index, wanted, stored, report)
    _total_fixes(index, stored, deltas, report)
    try:
        counts.get_entity(project_id, index.total_row(LABELLED))
    except (
        ResourceNotFoundError
    ):  # the labelled tally counts events: it is only created, from the tagged count
        if wanted.totals[index.total_row(TAGGED)]:
            deltas.totals[index.total_row(LABELLED)] = wanted.totals[index.total_row(TAGGED)]
    index.apply(deltas)
    if images or report.converted:  # an empty partition needs no mark: checking it costs one empty query
        index.mark_indexed()
    if not report.clean:
        log.warning("reconciled the image index of %s: %s", project_id, report)
    return report


def _number(table: TableClient, entity: Any, image: ImageRecord) -> bool:
    """Give an unindexed image its number, if nobody changed it meanwhile."""
    try:
        table.update_entity(
            to_entity(image, image.project_id, image.id),
            mode=UpdateMode.REPLACE,
            etag=entity.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        return True
    except (ResourceModifiedError, ResourceNotFoundError):
        log.info("image %s changed while being indexed; left for the next run", image.id)
        return False


def _membership_fixes(
    index: ImageIndex, wanted: IndexState, stored: IndexState, report: ReconcileReport
) -> Deltas:
    """Members to put in (images the scan found outside a view of theirs) and to take out (members whose image,
    read again now, is gone or no longer in that view)."""
    deltas = Deltas()
    for key in wanted.members.keys() | stored.members.keys():
        want, have = wanted.members.get(key, {}), stored.members.get(key, {})
        for seq in want.keys() | have.keys():
            if want.get(seq) == have.get(seq):
                continue
            if seq in want:
                deltas.members.setdefault(key, {})[seq] = want[seq]
                report.members_added += 1
            elif not _belongs(index, have[seq], seq, index.view_of_bucket_row(key)):
                deltas.members.setdefault(key, {})[seq] = None
                report.members_removed += 1
    return deltas


def _belongs(index: ImageIndex, image_id: str, seq: int, view: str) -> bool:
    try:
        image = from_entity(ImageRecord, index.table.get_entity(index.project_id, image_id))
    except ResourceNotFoundError:
        return False
    return image.seq == seq and view in views_of(image)


def _total_fixes(index: ImageIndex, stored: IndexState, deltas: Deltas, report: ReconcileReport) -> None:
    """Bring each view's total to its members' count once `deltas` is applied."""
    after: Counter[str] = Counter()
    for key, members in stored.members.items():
        after[index.total_row(index.view_of_bucket_row(key))] += len(members)
    for key, edits in deltas.members.items():
        had = stored.members.get(key, {})
        for seq, image_id in edits.items():
            after[index.total_row(index.view_of_bucket_row(key))] += (image_id is not None) - (seq in had)
    for key in after.keys() | stored.totals.keys():
        delta = after[key] - stored.totals.get(key, 0)
        if delta:
            deltas.totals[key] += delta
            report.counters_fixed += 1


def _convert_layout_1(table: TableClient, counts: TableClient, project_id: str) -> int:
    """Turn layout-1 index rows (`{prefix}i.{view}.{10^12-1-seq}` in the images table, for the project and each
    snapshot) into bucket members with absolute counts, then delete them; 0 where there are none."""
    rows = list(table.query_entities("PartitionKey eq @pk and RowKey ge '~'", parameters={"pk": project_id}))
    members: dict[str, Members] = {}
    converted = []
    for row in rows:
        match = _LAYOUT_1_ROW.fullmatch(row["RowKey"])
        if match is None:
            continue
        prefix, view, newest_first = match.groups()
        seq = _LAYOUT_1_MAX_SEQ - int(newest_first)
        bucket = ImageIndex(table, counts, project_id, prefix).bucket_row(view, seq)
        members.setdefault(bucket, {})[seq] = row["image_id"]
        converted.append(row["RowKey"])
    buckets = [
        {"PartitionKey": project_id, "RowKey": key, "n": len(m), "members": encode_members(m)}
        for key, m in members.items()
    ]
    for start in range(0, len(buckets), ROWS_PER_TRANSACTION):
        chunk = buckets[start : start + ROWS_PER_TRANSACTION]
        counts.submit_transaction([("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk])
    for start in range(0, len(converted), ROWS_PER_TRANSACTION):
        chunk = converted[start : start + ROWS_PER_TRANSACTION]
        table.submit_transaction([("delete", {"PartitionKey": project_id, "RowKey": key}) for key in chunk])
    return len(converted)


if __name__ == "__main__":  # python -m pipeline.store.image_reconcile: migrate (or check) every project now
    from pipeline.store import get_storage
    from pipeline.store.images import COUNTS_TABLE, TABLE
    from pipeline.store.projects import ProjectStore

    account = get_storage()
    for project in ProjectStore(account).list():
        report = reconcile(account.table(TABLE), account.table(COUNTS_TABLE), project.id)
        print(project.id, "clean" if report.clean else report)
