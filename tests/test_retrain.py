"""Scheduled retraining reads counters, not images (issue 12): a project is due once enough images were labelled
since its last completed iteration was asked for, counted by the labelled tally against the iteration's mark."""

from __future__ import annotations

import uuid

from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.services.images_create import NewImage, create_images
from pipeline.services.images_edit import add_image_tags
from pipeline.services.projects import create_project
from pipeline.services.retrain import new_labelled_images, retrain_due_projects
from pipeline.services.tags import create_tag
from pipeline.services.training import request_training
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.projects import ProjectStore
from tests.images import pattern_image


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
