"""Reconciling a project's image index with its image rows: the migration of a partition written before the index
existed (images get sequence numbers in creation order, and their index rows), and the proof, run by the sweeper,
that the rows and counters are exact (what a crash between an image's transaction and its counter update leaves is
corrected here).

It scans the partition, so it runs in the background (or once, lazily, the first time an old partition is used).
A write racing it can leave a counter one off; the next run corrects that too."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from pipeline.store.entities import from_entity, to_entity, unchanged_since
from pipeline.store.image_index import IMAGE_ROWS, LABELLED, TAGGED, VERSION_ROW, ImageIndex
from pipeline.store.records import ImageRecord

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    indexed: int = 0  # images that had no sequence number yet
    rows_added: int = 0
    rows_removed: int = 0
    counters_fixed: int = 0

    @property
    def clean(self) -> bool:
        return not (self.indexed or self.rows_added or self.rows_removed or self.counters_fixed)


def reconcile(table: TableClient, counts: TableClient, project_id: str) -> ReconcileReport:
    """`table` holds the image and index rows, `counts` the counters (see image_index)."""
    report = ReconcileReport()
    index = ImageIndex(table, counts, project_id)
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
            if _number(index, entities[image.id], numbered):
                images[image.id] = numbered
                report.indexed += 1
    expected = {
        key: image_id
        for image in images.values()
        if image.seq is not None
        for key, image_id in index.expected_rows(image).items()
    }
    found = index.stored_rows()
    rows = set(found)  # the index rows as this run leaves them, so counting them needs no second scan
    for key in expected.keys() - found.keys():
        table.upsert_entity({"PartitionKey": project_id, "RowKey": key, "image_id": expected[key]})
        rows.add(key)
        report.rows_added += 1
    for key in found.keys() - expected.keys():
        if _still_unwanted(index, key, found[key]):
            table.delete_entity(project_id, key)
            rows.discard(key)
            report.rows_removed += 1
    report.counters_fixed = _recount(index, rows)
    if images:  # an empty partition needs no mark: checking it costs one empty query
        table.upsert_entity({"PartitionKey": project_id, "RowKey": VERSION_ROW, "version": 1})
    if not report.clean:
        log.warning("reconciled the image index of %s: %s", project_id, report)
    return report


def _number(index: ImageIndex, entity: Any, image: ImageRecord) -> bool:
    """Give an unindexed image its number and index rows in one transaction, if nobody changed it meanwhile."""
    write = ("update", to_entity(image, image.project_id, image.id), unchanged_since(entity))
    try:
        index.table.submit_transaction([write, *index.change(None, image).operations])
        return True
    except TableTransactionError:
        log.info("image %s changed while being indexed; left for the next run", image.id)
        return False


def _still_unwanted(index: ImageIndex, key: str, image_id: str) -> bool:
    """An index row nothing expected is removed only if its image, read again now, still does not want it (an
    image written after the scan would)."""
    try:
        image = from_entity(ImageRecord, index.table.get_entity(index.project_id, image_id))
    except ResourceNotFoundError:
        return True
    return image.seq is None or key not in index.expected_rows(image)


def _recount(index: ImageIndex, rows: set[str]) -> int:
    """Bring every bucket and total counter to what the index rows say (the labelled tally, which counts events,
    is only created where missing, from the tagged count); return how many were off."""
    wanted = index.counts_from_rows(rows)
    stored = index.stored_counts()
    deltas = {key: wanted.get(key, 0) - stored.get(key, 0) for key in wanted.keys() | stored.keys()}
    deltas = {key: delta for key, delta in deltas.items() if delta}
    labelled = index.total_row(LABELLED)
    try:
        index.counts.get_entity(index.project_id, labelled)
    except ResourceNotFoundError:
        if wanted.get(index.total_row(TAGGED)):
            deltas[labelled] = wanted[index.total_row(TAGGED)]
    index.add_counts(deltas)
    return len(deltas)


if __name__ == "__main__":  # python -m pipeline.store.image_reconcile: migrate (or check) every project now
    from pipeline.store import get_storage
    from pipeline.store.images import COUNTS_TABLE, TABLE
    from pipeline.store.projects import ProjectStore

    account = get_storage()
    for project in ProjectStore(account).list():
        report = reconcile(account.table(TABLE), account.table(COUNTS_TABLE), project.id)
        print(project.id, "clean" if report.clean else report)
