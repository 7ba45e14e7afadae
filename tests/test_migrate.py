"""The migration command (issue 13 item 4), end to end between two Seer instances on loopback: everything copied
(tags, image bytes, regions, metadata, settings), a re-run skipping all of it, a run interrupted right after the
target stored a batch and resumed with nothing lost or duplicated, --dry-run writing nothing, and per-image
failures reported with a non-zero exit from the real console entry point."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from pipeline.contract.onnx_model import ModelLabel
from pipeline.migrate.__main__ import get_args_parser, run
from pipeline.migrate.api import TrainingApi
from tests.conftest import COMPACT_DOMAIN, PREDICTION_KEY, PROJECTS, TRAINING_KEY
from tests.images import pattern_image
from tests.project_copies import IMAGES, contents, fill_project, find_project, second_seer, training_client
from tests.published import published_iteration, tiny_classifier


@pytest.fixture(scope="module")
def source(live_url: str) -> Iterator[tuple[str, httpx.Client]]:
    with training_client(live_url) as http:
        yield live_url, http


@pytest.fixture()
def target() -> Iterator[tuple[str, httpx.Client]]:
    with second_seer() as seer, training_client(seer.url) as http:
        yield seer.url, http


class InterruptAfterUploads(httpx.BaseTransport):
    """Lets `uploads` image batches reach the target, then stops the run as a kill would: after the target
    stored the last batch, before its answer arrives (the case most likely to duplicate on a re-run)."""

    def __init__(self, uploads: int) -> None:
        self.left = uploads
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/images/files"):
            self.left -= 1
            if self.left == 0:
                response.read()
                raise KeyboardInterrupt("interrupted after the target stored a batch")
        return response


def _migrate(source_url: str, target_url: str, *extra: str, transport: httpx.BaseTransport | None = None):
    """Runs the command in-process; (exit status, printed summary)."""
    args = get_args_parser().parse_args(
        [
            *("--source-endpoint", source_url, "--source-key", TRAINING_KEY),
            *("--target-endpoint", target_url, "--target-key", TRAINING_KEY),
            *extra,
        ]
    )
    out = io.StringIO()
    source = TrainingApi(source_url, TRAINING_KEY)
    target = TrainingApi(target_url, TRAINING_KEY, transport=transport)
    try:
        return run(args, source, target, out), out.getvalue()
    finally:
        source.close()
        target.close()


def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _row(summary: str, name: str) -> list[str]:
    line = next(line for line in summary.splitlines() if line.startswith(name))
    return line[len(name) :].split()


def test_migration_copies_everything_and_a_rerun_skips_it(source, target) -> None:
    source_url, source_http = source
    target_url, target_http = target
    suffix = uuid.uuid4().hex[:8]
    classifier = fill_project(source_http, f"migrate-classifier-{suffix}")
    seer_settings = {
        "publishBetterRetrains": True,
        "unknownDetection": True,
    }  # Seer's own, copied between Seers
    _ok(
        source_http.patch(
            f"{PROJECTS}/{classifier['id']}", json={"name": classifier["name"], "settings": seer_settings}
        )
    )
    detector = fill_project(source_http, f"migrate-detector-{suffix}", detection=True)
    status, summary = _migrate(
        source_url, target_url, "--project", classifier["name"], "--project", detector["id"]
    )
    assert status == 0, summary
    regions = 2 * len([s for s in range(IMAGES) if s % 3 != 2])
    assert _row(summary, classifier["name"]) == ["2", str(IMAGES), "0", "0", "0", "-"]
    assert _row(summary, detector["name"]) == ["2", str(IMAGES), "0", "0", str(regions), "-"]
    for project in (classifier, detector):
        copy = find_project(target_http, project["name"])
        assert copy is not None
        assert contents(target_http, copy["id"]) == contents(source_http, project["id"])
    assert len(target_http.get(PROJECTS).json()) == 2  # only the projects asked for
    settings = find_project(target_http, classifier["name"])["settings"]
    assert {name: settings[name] for name in seer_settings} == seer_settings
    assert (
        settings["imageProcessingSettings"]["augmentationMethods"]["rotation"] is True
    )  # still the source's

    status, summary = _migrate(source_url, target_url, "--project", classifier["name"])
    assert status == 0, summary
    assert _row(summary, classifier["name"]) == ["2", "0", str(IMAGES), "0", "0", "-"]
    copy = find_project(target_http, classifier["name"])
    assert contents(target_http, copy["id"]) == contents(source_http, classifier["id"])


def test_an_interrupted_migration_resumes_with_nothing_lost_or_duplicated(source, target) -> None:
    source_url, source_http = source
    target_url, target_http = target
    project = fill_project(source_http, f"migrate-interrupted-{uuid.uuid4().hex[:8]}", detection=True)
    with pytest.raises(KeyboardInterrupt):
        _migrate(
            source_url, target_url, "--project", project["name"], "--batch-size", "3",
            transport=InterruptAfterUploads(2),
        )  # fmt: skip
    copy = find_project(target_http, project["name"])
    assert copy is not None
    assert len(target_http.get(f"{PROJECTS}/{copy['id']}/images", params={"take": 256}).json()) == 6

    status, summary = _migrate(source_url, target_url, "--project", project["name"], "--batch-size", "3")
    assert status == 0, summary
    assert _row(summary, project["name"])[1:4] == [str(IMAGES - 6), "6", "0"]
    assert [p["name"] for p in target_http.get(PROJECTS).json()] == [project["name"]]
    assert contents(target_http, copy["id"]) == contents(source_http, project["id"])


def test_a_dry_run_writes_nothing(source, target) -> None:
    source_url, source_http = source
    target_url, target_http = target
    project = fill_project(source_http, f"migrate-dry-{uuid.uuid4().hex[:8]}", detection=True)
    status, summary = _migrate(
        source_url, target_url, "--project", project["name"], "--dry-run", "--project", "nope"
    )
    assert status == 1, summary  # the unknown project is a failure
    assert _row(summary, project["name"])[:2] == ["2", str(IMAGES)]
    assert "nope: no such project at the source" in summary and "Dry run: nothing was written." in summary
    assert target_http.get(PROJECTS).json() == []


def test_the_command_reports_refused_images_and_exits_non_zero(source) -> None:
    """The console entry point itself, against a target that takes only 8 images per project."""
    source_url, source_http = source
    project = fill_project(source_http, f"migrate-full-{uuid.uuid4().hex[:8]}")
    with second_seer(max_images_per_project=8) as (target_url, _):
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pipeline.migrate"),
                *("--source-endpoint", source_url, "--source-key", TRAINING_KEY),
                *("--target-endpoint", target_url, "--target-key", TRAINING_KEY),
                *("--project", project["name"]),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert _row(done.stdout, project["name"])[:4] == ["2", "8", "0", str(IMAGES - 8)]
    assert done.stdout.count("ErrorLimitExceed") == IMAGES - 8


def test_train_and_publish_serves_the_source_published_names(service: str) -> None:
    """From a Seer with a published iteration into the whole service (where training runs): the copy is trained
    and published under the same name, and the prediction API answers under it."""
    name = f"migrate-published-{uuid.uuid4().hex[:8]}"
    publish_name = f"prod{uuid.uuid4().hex[:6]}"
    with second_seer() as seer, training_client(seer.url) as http:
        project = _ok(http.post(PROJECTS, params={"name": name, "domainId": COMPACT_DOMAIN}))
        at = f"{PROJECTS}/{project['id']}"
        tags = []
        for kind in (0, 1):
            tags.append(_ok(http.post(f"{at}/tags", params={"name": f"kind {kind}"})))
            entries = [
                {"name": f"{i}.jpg", "contents": base64.b64encode(pattern_image(kind, i)).decode()}
                for i in range(5)
            ]
            _ok(http.post(f"{at}/images/files", json={"images": entries, "tagIds": [tags[-1]["id"]]}))
        model = tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
        published_iteration(seer.account, project, publish_name, model)
        status, summary = _migrate(seer.url, service, "--project", name, "--train-and-publish")
    assert status == 0, summary
    assert _row(summary, name) == ["2", "10", "0", "0", "0", publish_name]
    with training_client(service) as target:
        copy = find_project(target, name)
        published = [
            i for i in _ok(target.get(f"{PROJECTS}/{copy['id']}/iterations")) if i.get("publishName")
        ]
        assert [i["publishName"] for i in published] == [publish_name]
        predicted = httpx.post(
            f"{service}/customvision/v3.1/prediction/{copy['id']}/classify/iterations/{publish_name}/image",
            content=pattern_image(1, 9),
            headers={"Prediction-Key": PREDICTION_KEY},
            timeout=60,
        )
        assert predicted.status_code == 200, predicted.text
        assert {p["tagName"] for p in predicted.json()["predictions"]} == {"kind 0", "kind 1"}
