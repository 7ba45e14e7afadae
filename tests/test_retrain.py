"""Scheduled retraining reads counters, not images (issue 12): a project is due once enough images were labelled
since its last completed iteration was asked for, counted by the labelled tally against the iteration's mark.
A project that publishes better retrains has the training job's decision recorded and acted on (issue 14)."""

from __future__ import annotations

import uuid

import httpx

from pipeline.contract.evaluation import EvaluationRecord
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus, PublishDecision
from pipeline.services.images_create import NewImage, create_images
from pipeline.services.images_edit import add_image_tags
from pipeline.services.projects import ProjectChanges, create_project, update_project
from pipeline.services.publishing import publish_iteration
from pipeline.services.retrain import new_labelled_images, retrain_due_projects
from pipeline.services.tags import create_tag
from pipeline.services.training import request_training
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.projects import ProjectStore
from tests.conftest import COMPACT_DOMAIN, MASTER_KEY, PREDICTION_KEY, PROJECTS, TRAINING_KEY
from tests.images import make_image, pattern_image
from tests.test_localhost import wait_for
from training_job import job
from training_job.champion import Score


def _complete(account: StorageAccount, project_id: str, iteration_id: str, **changes) -> None:
    """Stand in for the training job's outcome."""
    IterationStore(account).update(
        project_id,
        iteration_id,
        lambda i: i.model_copy(update={"status": IterationStatus.COMPLETED, **changes}),
    )


def test_labelled_images_since_the_last_iteration_make_a_project_due(
    account: StorageAccount, settings: Settings, monkeypatch
) -> None:
    project = create_project(account, settings, f"retrain-{uuid.uuid4()}")
    tags = [create_tag(account, settings, project.id, name).id for name in ("warm", "cool")]
    for kind, tag in enumerate(tags):
        batch = [NewImage(data=pattern_image(kind, i), tag_ids=(tag,)) for i in range(5)]
        create_images(account, settings, project.id, batch)
    first = request_training(account, settings, project.id)
    assert new_labelled_images(account, project.id) is None  # still training
    _complete(account, project.id, first.id)
    assert new_labelled_images(account, project.id) == 0

    more = [NewImage(data=pattern_image(0, 50 + i), tag_ids=(tags[0],)) for i in range(3)]
    create_images(account, settings, project.id, more)
    untagged = create_images(
        account, settings, project.id, [NewImage(data=pattern_image(1, 60 + i)) for i in range(2)]
    )
    assert new_labelled_images(account, project.id) == 3  # untagged uploads are not labels
    add_image_tags(account, project.id, [(r.image.id, tags[1]) for r in untagged])
    assert new_labelled_images(account, project.id) == 5

    due = settings.model_copy(update={"retrain_min_new_images": 5})
    # The timer's pass over this project alone: the session's other projects are other tests' business.
    monkeypatch.setattr(ProjectStore, "list", lambda store: [store.get(project.id)])
    assert retrain_due_projects(account, due) == [project.id]
    [second] = [i for i in IterationStore(account).list(project.id) if i.id != first.id]
    assert second.status == IterationStatus.TRAINING and second.labelled_mark == first.labelled_mark + 5


def test_an_iteration_from_before_marks_gets_one_from_a_single_scan(
    account: StorageAccount, settings: Settings
) -> None:
    project = create_project(account, settings, f"retrain-old-{uuid.uuid4()}")
    tags = [create_tag(account, settings, project.id, name).id for name in ("a", "b")]
    for kind, tag in enumerate(tags):
        create_images(
            account,
            settings,
            project.id,
            [NewImage(data=pattern_image(kind, 70 + i), tag_ids=(tag,)) for i in range(5)],
        )
    iteration = request_training(account, settings, project.id)
    _complete(account, project.id, iteration.id, labelled_mark=None)  # as rows written before marks were kept
    create_images(account, settings, project.id, [NewImage(data=pattern_image(0, 90), tag_ids=(tags[0],))])
    assert new_labelled_images(account, project.id) == 1
    assert IterationStore(account).get(project.id, iteration.id).labelled_mark == 10


def _contest(account: StorageAccount, settings: Settings, challenger_ap: float, champion_ap: float):
    """A published champion and a scheduled challenger of a project that publishes better retrains, the
    challenger finished by the training job's own code with fixed out-of-fold scores; both rows as stored."""
    project = create_project(account, settings, f"contest-{uuid.uuid4()}")
    update_project(account, settings, project.id, ProjectChanges(publish_better_retrains=True))
    tags = [create_tag(account, settings, project.id, name).id for name in ("a", "b")]
    for kind, tag in enumerate(tags):
        batch = [NewImage(data=pattern_image(kind, 200 + i), tag_ids=(tag,)) for i in range(5)]
        create_images(account, settings, project.id, batch)
    champion = request_training(account, settings, project.id)
    _complete(account, project.id, champion.id, evaluation_blob="e", model_blob="m")
    publish_iteration(account, project.id, champion.id, "live", "resource-1")
    challenger = request_training(account, settings, project.id, force_train=True, scheduled=True)
    contested, found = job._contest(account, challenger)
    assert contested and found is not None and found.id == champion.id
    trained = job.Trained(
        b"",
        EvaluationRecord(classification_type=None, labels=[], images=[]),
        Score(challenger_ap, (challenger_ap,)),
        Score(champion_ap, (champion_ap,)),
    )
    done = challenger.model_copy(
        update={"status": IterationStatus.COMPLETED, **job._outcome(account, found, trained)}
    )
    job.finish(account, settings, done, IterationStatus.COMPLETED)
    store = IterationStore(account)
    return store.get(project.id, champion.id), store.get(project.id, challenger.id)


def test_a_better_scheduled_retrain_takes_the_published_name_and_resource(
    account: StorageAccount, settings: Settings
) -> None:
    champion, challenger = _contest(account, settings, challenger_ap=0.9, champion_ap=0.8)
    assert challenger.publish_decision == PublishDecision.PUBLISHED
    assert (challenger.champion_score, challenger.challenger_score) == (0.8, 0.9)
    assert challenger.champion_iteration_id == champion.id
    assert (challenger.publish_name, challenger.original_publish_resource_id) == ("live", "resource-1")
    assert champion.publish_name is None and champion.original_publish_resource_id is None


def test_a_scheduled_retrain_that_is_not_better_leaves_the_champion_published(
    account: StorageAccount, settings: Settings
) -> None:
    champion, challenger = _contest(account, settings, challenger_ap=0.8, champion_ap=0.8)
    assert challenger.publish_decision == PublishDecision.KEPT_CHAMPION
    assert (challenger.champion_score, challenger.challenger_score) == (0.8, 0.8)
    assert challenger.publish_name is None
    assert (champion.publish_name, champion.original_publish_resource_id) == ("live", "resource-1")


def test_retrains_compete_only_when_scheduled_and_the_project_asks(
    account: StorageAccount, settings: Settings
) -> None:
    project = create_project(account, settings, f"no-contest-{uuid.uuid4()}")
    tags = [create_tag(account, settings, project.id, name).id for name in ("a", "b")]
    for kind, tag in enumerate(tags):
        batch = [NewImage(data=pattern_image(kind, 300 + i), tag_ids=(tag,)) for i in range(5)]
        create_images(account, settings, project.id, batch)
    scheduled = request_training(account, settings, project.id, scheduled=True)
    assert job._contest(account, scheduled) == (False, None)  # the project does not publish better retrains
    update_project(account, settings, project.id, ProjectChanges(publish_better_retrains=True))
    assert job._contest(account, scheduled) == (True, None)  # nothing published: NoChampion
    by_user = scheduled.model_copy(update={"scheduled": False})
    assert job._contest(account, by_user) == (False, None)


def test_the_timer_run_on_demand_publishes_a_better_retrain(service: str, monkeypatch) -> None:
    """End to end through the local host: a published classifier of two picture families; a third family is
    labelled, the retraining timer is run through the host's admin API, the training job trains the challenger
    and scores the champion's recipe on the same folds. The champion never saw the new tag, so the challenger
    wins and answers at the same prediction URL."""
    api = httpx.Client(base_url=service, headers={"Training-Key": TRAINING_KEY}, timeout=60)
    project = api.post(
        PROJECTS, params={"name": f"retrain-e2e-{uuid.uuid4()}", "domainId": COMPACT_DOMAIN}
    ).json()
    base = f"{PROJECTS}/{project['id']}"
    for kind, name in ((0, "warm"), (1, "cool")):
        tag = api.post(f"{base}/tags", params={"name": name}).json()
        files = [("imageData", (f"{i}.jpg", pattern_image(kind, 400 + i), "image/jpeg")) for i in range(5)]
        assert api.post(f"{base}/images", params={"tagIds": tag["id"]}, files=files).status_code == 200
    champion = _trained(api, base, api.post(f"{base}/train").json()["id"])
    published = api.post(
        f"{base}/iterations/{champion['id']}/publish",
        params={"publishName": "live", "predictionId": "resource-1"},
    )
    assert published.status_code == 200, published.text
    patched = api.patch(base, json={"settings": {"publishBetterRetrains": True}})
    assert patched.json()["settings"]["publishBetterRetrains"] is True
    green = api.post(f"{base}/tags", params={"name": "green"}).json()
    files = [
        ("imageData", (f"{i}.jpg", make_image(color=(40, 170, 60), seed=i), "image/jpeg")) for i in range(10)
    ]
    assert api.post(f"{base}/images", params={"tagIds": green["id"]}, files=files).status_code == 200

    # The timer's pass over this project alone: the session's other projects are other tests' business.
    monkeypatch.setattr(ProjectStore, "list", lambda store: [store.get(project["id"])])
    started = httpx.post(
        f"{service}/admin/functions/retrain_on_schedule",
        headers={"x-functions-key": MASTER_KEY},
        json={"input": ""},
    )
    assert started.status_code == 202
    challenger = _trained(api, base, wait_for(lambda: _newer(api, base, champion["id"]))["id"])

    assert challenger["scheduled"] is True
    assert challenger["publishDecision"] == "Published", challenger
    assert challenger["championIterationId"] == champion["id"]
    assert challenger["challengerScore"] > challenger["championScore"]
    assert (challenger["publishName"], challenger["originalPublishResourceId"]) == ("live", "resource-1")
    assert "publishName" not in api.get(f"{base}/iterations/{champion['id']}").json()
    prediction = wait_for(lambda: _top_tag(service, project["id"], make_image(color=(40, 170, 60), seed=99)))
    assert prediction == "green"  # only the challenger knows the tag


def _trained(api: httpx.Client, base: str, iteration_id: str) -> dict:
    iteration = wait_for(
        lambda: (i := api.get(f"{base}/iterations/{iteration_id}").json())["status"] != "Training" and i,
        timeout=300,
    )
    assert iteration["status"] == "Completed", iteration
    return iteration


def _newer(api: httpx.Client, base: str, iteration_id: str) -> dict | None:
    return next((i for i in api.get(f"{base}/iterations").json() if i["id"] != iteration_id), None)


def _top_tag(service: str, project_id: str, image: bytes) -> str | None:
    answer = httpx.post(
        f"{service}/customvision/v3.0/Prediction/{project_id}/classify/iterations/live/image",
        headers={"Prediction-Key": PREDICTION_KEY},
        content=image,
        timeout=60,
    ).json()
    top = max(answer["predictions"], key=lambda p: p["probability"])
    return top["tagName"] if top["tagName"] == "green" else None
