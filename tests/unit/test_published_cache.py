"""The prediction URL cache forgets what it has not been asked for within its time to live (issue 10, item 10:
every project ever predicted stayed in it)."""

from __future__ import annotations

import time

import pytest

from pipeline.services import publishing
from pipeline.services.publishing import PublishedIterations, PublishedTarget
from pipeline.store.records import IterationRecord


def test_expired_prediction_urls_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(_account: object, project_id: str, publish_name: str) -> PublishedTarget:
        return PublishedTarget(
            IterationRecord.model_construct(project_id=project_id, publish_name=publish_name)
        )

    monkeypatch.setattr(publishing, "published_iteration", lookup)
    cache = PublishedIterations(account=None, ttl=0.05)  # storage is never reached: the lookup is replaced
    for n in range(100):
        assert cache.get(f"project-{n}", "published").iteration.project_id == f"project-{n}"
    time.sleep(0.06)
    cache.get("project-last", "published")
    assert len(cache) == 1
