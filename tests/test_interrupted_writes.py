"""kill -9 in the middle of an upload batch or a DeleteProject, then the sweeper: nothing is left behind.

The write runs in a subprocess (tests/interrupted_writer.py) that freezes right after a chosen storage call, so
each case kills at a known point rather than after a guessed sleep.
"""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.errors import CustomVisionError
from pipeline.core.vocabulary import ImageCreateStatus, IterationStatus, new_id
from pipeline.services.images_create import CLAIM_GRACE, NewImage, create_images
from pipeline.services.projects import create_project, get_project, list_projects
from pipeline.store.housekeeping import PROJECT_CONTAINERS, PROJECT_TABLES, Housekeeping
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore, artefact_name
from pipeline.store.predictions import PredictionStore
from pipeline.store.projects import ProjectStore
from pipeline.store.records import IterationRecord, PredictedTag, PredictionRecord, TagRecord
from pipeline.store.tags import TagStore
from tests.images import make_image
from tests.sweeping import sweep_now

ROOT = Path(__file__).resolve().parents[1]
BATCH = 6


def _run_until_frozen(freeze_at: str, *args: str) -> None:
    """Start the writer, wait until it reports that it froze at `freeze_at`, and SIGKILL it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.interrupted_writer", *args],
        cwd=ROOT,
        env={**os.environ, "SEER_TEST_FREEZE_AT": freeze_at},
        stdout=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().decode().strip() if ready else "(no answer in 60 s)"
        assert line == "FROZEN", f"the writer did not stop at {freeze_at}: {line}"
    finally:
        process.kill()  # SIGKILL: no cleanup runs
        process.wait()
        process.stdout.close()


def _leftovers(account, project_id: str) -> Counter[str]:
    """What a crash can leave in a live project: blobs and claims without rows, rows without blobs."""
    housekeeping, images = Housekeeping(account), ImageStore(account)
    rows = {image.id: image for image in images.list(project_id)}
    found: Counter[str] = Counter()
    blobs = {b.name: b for b in housekeeping.blobs("images", project_id)}
    found["image blobs without a row"] = sum(1 for b in blobs.values() if b.owner_id not in rows)
    found["image rows without blobs"] = sum(
        1
        for image in rows.values()
        if not {image.original_blob, image.resized_blob, image.thumbnail_blob} <= set(blobs)
    )
    found["claims without a row"] = sum(
        1 for _, c in images.hash_claims(project_id) if c.image_id not in rows
    )
    iterations = IterationStore(account).ids(project_id)
    found["model blobs without a row"] = sum(
        1 for b in housekeeping.blobs("models", project_id) if b.owner_id not in iterations
    )
    predictions = PredictionStore(account).ids(project_id)
    found["prediction blobs without a row"] = sum(
        1 for b in housekeeping.blobs("predictions", project_id) if b.owner_id not in predictions
    )
    return +found


def _everything(account, project_id: str) -> Counter[str]:
    """Every row and blob stored under a project id, by table and container."""
    found: Counter[str] = Counter()
    for table in PROJECT_TABLES:
        rows = account.table(table).query_entities("PartitionKey eq @pk", parameters={"pk": project_id})
        found[f"{table} rows"] = sum(1 for _ in rows)
    for container in PROJECT_CONTAINERS:
        found[f"{container} blobs"] = sum(1 for _ in Housekeeping(account).blobs(container, project_id))
    return +found


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("batch")
    paths = [folder / f"{i}.jpg" for i in range(BATCH)]
    for i, path in enumerate(paths):
        path.write_bytes(make_image(seed=700 + i))
    return paths


def _upload(account, settings, project_id: str, files: list[Path]) -> list[ImageCreateStatus]:
    batch = [NewImage(data=f.read_bytes(), name=f.name) for f in files]
    return [r.status for r in create_images(account, settings, project_id, batch)]


UPLOAD_KILL_POINTS = [
    "create_entity:imagehashes:1",  # a claim, no blob yet
    "upload_blob:images:1",
    "upload_blob:images:3",
    "create_entity:images:1",  # one image row stored (not yet indexed), the others midway
    "upload_blob:images:10",
]


@pytest.mark.parametrize("freeze_at", UPLOAD_KILL_POINTS)
def test_killed_upload_batch_is_swept_and_can_be_uploaded_again(account, settings, files, freeze_at):
    project = create_project(account, settings, f"killed-upload-{new_id()}")
    _run_until_frozen(freeze_at, "upload", project.id, *map(str, files))
    before = _leftovers(account, project.id)
    assert before, "the kill left nothing to sweep: the case tests nothing"

    # The same files again, at once: the dead process's claims are taken over without waiting out CLAIM_GRACE.
    started = time.monotonic()
    statuses = _upload(account, settings, project.id, files)
    assert time.monotonic() - started < CLAIM_GRACE.total_seconds() / 3
    assert all(status.succeeded for status in statuses), statuses

    report = sweep_now(account, project.id)
    assert report.removed["image blobs"] == before["image blobs without a row"]
    assert not _leftovers(account, project.id)
    stored = ImageStore(account).list(project.id)
    assert sorted(i.content_hash for i in stored) == sorted(
        hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    )
    assert ImageStore(account).count(project.id) == len(stored)  # the counters, reconciled by the sweep
    assert ImageStore(account).reconcile(project.id).clean
    assert set(_upload(account, settings, project.id, files)) == {ImageCreateStatus.OK_DUPLICATE}


def _project_with_everything(account, settings) -> str:
    """A project with tagged images, a trained iteration's artefacts and stored predictions."""
    project = create_project(account, settings, f"killed-delete-{new_id()}")
    tag = TagStore(account).create(TagRecord(id=new_id(), project_id=project.id, name="thing"))
    batch = [NewImage(data=make_image(seed=800 + i), tag_ids=(tag.id,)) for i in range(3)]
    assert all(r.status.succeeded for r in create_images(account, settings, project.id, batch))
    iterations, iteration_id = IterationStore(account), new_id()
    for file in ("model.onnx", "evaluation.json"):  # what a finished training job leaves
        iterations.put_artefact(artefact_name(project.id, iteration_id, file), b"artefact")
    iteration = iterations.create(
        IterationRecord(
            id=iteration_id,
            project_id=project.id,
            name="Iteration 1",
            status=IterationStatus.COMPLETED,
            domain_id=project.domain_id,
            training_set_fingerprint="f",
            model_blob=artefact_name(project.id, iteration_id, "model.onnx"),
            evaluation_blob=artefact_name(project.id, iteration_id, "evaluation.json"),
        )
    )
    predictions = PredictionStore(account)
    for _ in range(2):
        prediction_id = new_id()
        names = [
            f"{project.id}/{prediction_id}/{n}" for n in ("original.jpg", "resized.jpg", "thumbnail.jpg")
        ]
        for name in names:
            predictions.put_blob(name, make_image(seed=900), "image/jpeg")
        predictions.insert(
            PredictionRecord(
                id=prediction_id,
                project_id=project.id,
                iteration_id=iteration.id,
                domain_id=project.domain_id,
                predictions=[PredictedTag(tag_id=tag.id, tag_name="thing", probability=0.9)],
                original_blob=names[0],
                resized_blob=names[1],
                thumbnail_blob=names[2],
                width=320,
                height=240,
            )
        )
    return project.id


DELETE_KILL_POINTS = [
    "update_entity:projects:1",  # marked as deleting, nothing removed yet
    "delete_entity:images:2",
    "delete_entity:iterations:1",
    "delete_blob:images:4",
    "delete_blob:predictions:1",
]


@pytest.mark.parametrize("freeze_at", DELETE_KILL_POINTS)
def test_killed_delete_project_is_finished_by_the_sweeper(account, settings, freeze_at):
    project_id = _project_with_everything(account, settings)
    _run_until_frozen(freeze_at, "delete", project_id)
    before = _everything(account, project_id)
    # The row goes last: a kill at the last blob (parallel deletes in flight finish) may leave only the tombstone.
    tombstone = ProjectStore(account).get(project_id)
    assert before or tombstone, "the kill left nothing to sweep: the case tests nothing"
    with pytest.raises(CustomVisionError) as missing:
        get_project(account, project_id)  # a project being deleted is already gone for the API
    assert missing.value.status == 404
    assert project_id not in [p.id for p in list_projects(account)]

    report = sweep_now(account, project_id)
    assert report.removed == Counter({"deleted projects": 1})
    assert not _everything(account, project_id)
    assert ProjectStore(account).get(project_id) is None


def test_the_timer_sweeps_what_a_vanished_project_left(account, settings, monkeypatch):
    """Rows and blobs under a project id with no project row (an upload that finished after its project was
    deleted) go on the next timer run; a live project's fresh blobs without rows stay within the grace period."""
    gone = new_id()
    ImageStore(account).put_blob(f"{gone}/{new_id()}/original.jpg", b"late", "image/jpeg")
    ImageStore(account).claim_hash(gone, "hash", new_id())
    TagStore(account).create(TagRecord(id=new_id(), project_id=gone, name="late"))
    live = create_project(account, settings, f"live-{new_id()}")
    in_flight = f"{live.id}/{new_id()}/original.jpg"
    ImageStore(account).put_blob(in_flight, b"row about to be written", "image/jpeg")

    monkeypatch.setenv("SEER_SWEEP_GRACE_SECONDS", "60")
    from pipeline.core.settings import get_settings

    get_settings.cache_clear()
    import function_app  # here, not at collection: its app reads the process settings the session sets up

    function_app.sweep_orphans(None)  # the timer's binding, as the host calls it
    get_settings.cache_clear()

    assert not _everything(account, gone)
    assert [b.name for b in Housekeeping(account).blobs("images", live.id)] == [in_flight]
    assert sweep_now(account, live.id).removed == Counter({"image blobs": 1})
    assert not _everything(account, live.id)
