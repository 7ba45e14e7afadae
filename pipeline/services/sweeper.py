"""The sweeper: makes interrupted uploads, predictions, training runs and deletions converge to no orphans.

Writers put blobs before the row that points at them, and deleters remove the row before the blobs (see
docs/architecture.md, "Write order and sweeping"), so a crash anywhere leaves only these, which the sweeper
recognises per project id found in any table partition or blob folder:
- no project row: everything under the id (a project row is written before anything it owns and ids are never
  reused, so nothing under a missing project can become valid again);
- a project marked as deleting for longer than the grace period: an interrupted DeleteProject, finished;
- a project still marked as importing after the grace period, or by a process of this host that no longer runs:
  an ImportProject that died midway, deleted;
- in a live project, once older than the grace period (their row may be about to be written): image, model and
  prediction blobs whose image, iteration or prediction row does not exist; export files that no export row names
  and no iteration serves (a deleted iteration's, a file a later export of the same kind replaced once nothing
  serves it, a job's upload whose row went to a newer request); and hash claims whose image row does
  not exist (sooner when the claim's owner is provably dead); image index members and counters that disagree with
  the image rows (store.image_reconcile, which a crash between an image's row and its index rows leaves); and
  training-set snapshots whose iteration row is gone (an iteration row is written before its snapshot); and stored
  suggestions whose image or iteration row is gone (both rows are written before the suggestion).
Every step is idempotent and safe next to live writers; a run stops starting projects after `sweep_max_seconds`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.core.owners import provably_dead
from pipeline.core.settings import Settings
from pipeline.services.project_import import abandoned_import
from pipeline.services.projects import delete_project, purge_project
from pipeline.store import StorageAccount
from pipeline.store import exports as export_blobs
from pipeline.store import images as image_blobs
from pipeline.store import iterations as model_blobs
from pipeline.store import predictions as prediction_blobs
from pipeline.store.exports import ExportStore
from pipeline.store.housekeeping import Housekeeping, StoredBlob
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.predictions import PredictionStore
from pipeline.store.projects import ProjectStore
from pipeline.store.records import utcnow
from pipeline.store.suggestions import SuggestionStore

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one run removed, by kind; `complete` is False when the time bound cut the run short."""

    removed: Counter[str] = field(default_factory=Counter)
    complete: bool = True


def sweep(account: StorageAccount, settings: Settings, now: datetime | None = None) -> SweepReport:
    """One pass over every project id in storage."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.sweep_grace_seconds)
    deadline = time.monotonic() + settings.sweep_max_seconds
    report = SweepReport()
    project_ids = Housekeeping(account).project_ids() | {p.id for p in ProjectStore(account).list()}
    for project_id in sorted(project_ids):
        if time.monotonic() > deadline:
            report.complete = False
            break
        sweep_project(account, project_id, cutoff, report)
    if report.removed or not report.complete:
        log.warning("sweeper removed %s (complete: %s)", dict(report.removed), report.complete)
    return report


def sweep_project(account: StorageAccount, project_id: str, cutoff: datetime, report: SweepReport) -> None:
    """Apply the rules to one project id; only what was last written before `cutoff` counts as left over."""
    project = ProjectStore(account).get(project_id)
    if project is None or (project.deleting_since and project.deleting_since <= cutoff):
        purge_project(account, project_id)
        report.removed["deleted projects" if project else "projects without a row"] += 1
        return
    if project.deleting:
        return  # a deletion in progress (or one too recent to call interrupted)
    if abandoned_import(project, cutoff):
        delete_project(account, project_id)
        report.removed["abandoned imports"] += 1
        return
    housekeeping = Housekeeping(account)
    images, iterations, predictions = ImageStore(account), IterationStore(account), PredictionStore(account)
    for kind, container, owners in (
        ("image blobs", image_blobs.CONTAINER, images.ids),
        ("model blobs", model_blobs.CONTAINER, iterations.ids),
        ("prediction blobs", prediction_blobs.CONTAINER, predictions.ids),
    ):
        orphans = _orphan_blobs(housekeeping, container, project_id, cutoff, owners, _owner)
        housekeeping.delete_blobs(orphans)
        _count(report, kind, len(orphans))
    exports = ExportStore(account)
    unused = _orphan_blobs(
        housekeeping,
        export_blobs.CONTAINER,
        project_id,
        cutoff,
        lambda pid: exports.named_blobs(pid) | iterations.served_exports(pid),
        _name,
    )
    housekeeping.delete_blobs(unused)
    _count(report, "export blobs", len(unused))
    _count(report, "hash claims", _drop_stale_claims(images, project_id, cutoff))
    reconciled = images.reconcile(project_id)
    _count(report, "image index members", reconciled.members_added + reconciled.members_removed)
    _count(report, "image counters", reconciled.counters_fixed)
    live = iterations.ids(project_id)
    dead = [iteration_id for iteration_id in images.snapshot_ids(project_id) if iteration_id not in live]
    for iteration_id in dead:
        images.drop_snapshot(project_id, iteration_id)
    _count(report, "training-set snapshots", len(dead))
    _count(report, "stored suggestions", _drop_orphan_suggestions(account, project_id))


def _count(report: SweepReport, kind: str, removed: int) -> None:
    if removed:
        report.removed[kind] += removed


def _owner(blob: StoredBlob) -> str:
    return blob.owner_id


def _name(blob: StoredBlob) -> str:
    return blob.name


def _orphan_blobs(
    housekeeping: Housekeeping,
    container: str,
    project_id: str,
    cutoff: datetime,
    kept: Callable[[str], set[str]],
    key: Callable[[StoredBlob], str],
) -> list[StoredBlob]:
    """Blobs last written before `cutoff` whose `key` (the owner's id, or the blob's name) is not among the `kept`
    ones that the rows give; the rows are read again after the listing, so a row written meanwhile saves its
    blobs."""
    known = kept(project_id)
    candidates = [
        blob
        for blob in housekeeping.blobs(container, project_id)
        if blob.last_modified <= cutoff and key(blob) not in known
    ]
    if not candidates:
        return []
    known = kept(project_id)
    return [blob for blob in candidates if key(blob) not in known]


def _drop_orphan_suggestions(account: StorageAccount, project_id: str) -> int:
    """Suggestion rows whose image or iteration was deleted; the rows are listed before the owners are read, so a
    row written meanwhile belongs to owners that exist."""
    suggestions = SuggestionStore(account)
    rows = list(suggestions.keys(project_id))
    if not rows:
        return 0
    images, iterations = ImageStore(account).ids(project_id), IterationStore(account).ids(project_id)
    orphans = [
        key
        for key, iteration_id, image_id in rows
        if iteration_id not in iterations or image_id not in images
    ]
    return suggestions.delete(project_id, orphans)


def _drop_stale_claims(images: ImageStore, project_id: str, cutoff: datetime) -> int:
    """Claims whose image row never appeared: older than `cutoff` or held by a dead process. Each is deleted only
    if unchanged since read (an upload may have taken it over meanwhile)."""
    known = images.ids(project_id)
    dropped = 0
    for content_hash, claim in images.hash_claims(project_id):
        if claim.image_id in known:
            continue
        if claim.claimed_at > cutoff and not provably_dead(claim.owner):
            continue
        if images.get(project_id, claim.image_id) is None and images.drop_claim(
            project_id, content_hash, claim
        ):
            dropped += 1
    return dropped
