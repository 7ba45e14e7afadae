"""The sweeper's rules run now, on one project, with no grace period: what tests of leftovers check against."""

from __future__ import annotations

from pipeline.services.sweeper import SweepReport, sweep_project
from pipeline.store import StorageAccount
from pipeline.store.records import utcnow


def sweep_now(account: StorageAccount, project_id: str) -> SweepReport:
    report = SweepReport()
    sweep_project(account, project_id, utcnow(), report)
    return report
