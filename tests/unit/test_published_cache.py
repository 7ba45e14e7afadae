"""The prediction URL cache forgets what it has not been asked for within its time to live (issue 10, item 10:
every project ever predicted stayed in it)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.core.errors import CustomVisionError, not_found
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


@pytest.mark.parametrize("found", [True, False])
def test_requests_that_miss_together_share_one_read(monkeypatch: pytest.MonkeyPatch, found: bool) -> None:
    reads: list[str] = []
    all_waiting = threading.Barrier(5)

    def lookup(_account: object, project_id: str, publish_name: str) -> PublishedTarget:
        reads.append(project_id)
        time.sleep(0.2)  # the others arrive while this read is under way
        if not found:
            raise not_found("NotFoundIteration", "not published")
        return PublishedTarget(IterationRecord.model_construct(project_id=project_id))

    monkeypatch.setattr(publishing, "published_iteration", lookup)
    cache = PublishedIterations(account=None, ttl=60)

    def request() -> PublishedTarget | CustomVisionError:
        all_waiting.wait()
        try:
            return cache.get("project", "published")
        except CustomVisionError as error:
            return error

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: request(), range(5)))
    assert reads == ["project"]
    if found:
        assert {id(answer) for answer in answers} == {id(answers[0])}
        assert cache.get("project", "published") is answers[0]  # remembered: no second read
        assert reads == ["project"]
    else:
        assert all(isinstance(answer, CustomVisionError) and answer.status == 404 for answer in answers)
        with pytest.raises(
            CustomVisionError
        ):  # an unknown name is not remembered: the next request reads again
            cache.get("project", "published")
        assert reads == ["project", "project"]


def test_a_forgotten_project_is_read_again_and_a_read_begun_before_is_neither_kept_nor_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`forget` (the app changed the project's publishing): the next request reads storage again; a read that was
    under way when it was called answers its own request but is not remembered, and a request that comes after
    does not wait on it."""
    published = {"name": "iteration-1"}
    read_started, finish_read = threading.Event(), threading.Event()
    reads: list[str] = []

    def lookup(_account: object, project_id: str, publish_name: str) -> PublishedTarget:
        reads.append(published["name"])
        answer = PublishedTarget(IterationRecord.model_construct(name=published["name"]))
        if len(reads) == 2:  # the read that the publish below overtakes
            read_started.set()
            finish_read.wait(5)
        return answer

    monkeypatch.setattr(publishing, "published_iteration", lookup)
    cache = PublishedIterations(account=None, ttl=60)
    assert cache.get("Project", "live").iteration.name == "iteration-1"
    cache.forget("project")  # any case: project ids are GUIDs
    with ThreadPoolExecutor(1) as pool:
        overtaken = pool.submit(cache.get, "project", "live")
        assert read_started.wait(5)
        published["name"] = "iteration-2"
        cache.forget("project")
        assert cache.get("project", "live").iteration.name == "iteration-2"  # a read of its own
        finish_read.set()
        assert overtaken.result(5).iteration.name == "iteration-1"
    assert cache.get("project", "live").iteration.name == "iteration-2"  # the later read is the one kept
    assert reads == ["iteration-1", "iteration-1", "iteration-2"]
