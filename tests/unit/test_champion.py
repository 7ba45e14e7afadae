"""Publishing better retrains: the decision on fixed scores, which published iteration is the champion, and its
recipe (training_job/champion.py, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.contract.evaluation import EvaluatedImage, EvaluationRecord
from pipeline.core.vocabulary import ClassificationType, IterationStatus, PublishDecision
from pipeline.store.records import IterationRecord
from training_job.champion import Score, decide, find_champion, recipe_of

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"  # General (compact): EfficientNet-Lite0
GENERAL = "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"  # General: EfficientNet-Lite2
DETECTION = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def classifier_score(average_precision: float, log_loss: float) -> Score:
    """As the training job compares classifiers: mean AP, then the lower log loss."""
    return Score(average_precision, (average_precision, -log_loss))


@pytest.mark.parametrize(
    ("challenger", "champion", "decision"),
    [
        (classifier_score(0.9, 0.3), None, PublishDecision.NO_CHAMPION),
        (classifier_score(0.91, 0.5), classifier_score(0.90, 0.1), PublishDecision.PUBLISHED),
        (classifier_score(0.90, 0.2), classifier_score(0.90, 0.3), PublishDecision.PUBLISHED),
        (classifier_score(0.90, 0.3), classifier_score(0.90, 0.3), PublishDecision.KEPT_CHAMPION),
        (classifier_score(0.90, 0.4), classifier_score(0.90, 0.3), PublishDecision.KEPT_CHAMPION),
        (classifier_score(0.89, 0.0), classifier_score(0.90, 0.9), PublishDecision.KEPT_CHAMPION),
        (Score(0.7, (0.7,)), Score(0.6, (0.6,)), PublishDecision.PUBLISHED),  # a detector's mean AP alone
        (Score(0.6, (0.6,)), Score(0.6, (0.6,)), PublishDecision.KEPT_CHAMPION),
    ],
)
def test_only_a_strictly_better_challenger_is_published(
    challenger: Score, champion: Score | None, decision: PublishDecision
) -> None:
    assert decide(challenger, champion) == decision


def iteration(name: str, minutes: int, **fields: object) -> IterationRecord:
    defaults: dict[str, object] = {
        "id": name,
        "project_id": "p",
        "name": name,
        "domain_id": COMPACT,
        "training_set_fingerprint": "f",
        "status": IterationStatus.COMPLETED,
        "created": T0 + timedelta(minutes=minutes),
        "trained_at": T0 + timedelta(minutes=minutes + 1),
        "evaluation_blob": f"p/{name}/evaluation.json",
    }
    return IterationRecord.model_validate({**defaults, **fields})


def test_the_champion_is_the_newest_published_iteration_that_can_be_scored() -> None:
    challenger = iteration("challenger", 50, status=IterationStatus.TRAINING, scheduled=True)
    older = iteration("older", 0, publish_name="old")
    newer = iteration(
        "newer", 10, publish_name="live", domain_id=GENERAL
    )  # another backbone: still comparable
    others = [
        iteration("unpublished", 20),
        iteration("failed", 30, status=IterationStatus.FAILED, publish_name="x"),
        iteration("no-evaluation", 35, publish_name="y", evaluation_blob=None),
        iteration("detector", 40, publish_name="z", domain_id=DETECTION),
    ]
    assert find_champion([older, newer, *others, challenger], challenger) == newer
    assert find_champion([*others, challenger], challenger) is None
    assert find_champion([challenger.model_copy(update={"publish_name": "self"})], challenger) is None


def test_the_recipe_is_the_champions_backbone_type_and_images() -> None:
    champion = iteration("c", 0, domain_id=GENERAL, classification_type=ClassificationType.MULTILABEL)
    evaluation = EvaluationRecord(
        classification_type=ClassificationType.MULTILABEL,
        labels=[],
        images=[EvaluatedImage(image_id=i, fold=0, truth=[]) for i in ("a", "b")],
    )
    recipe = recipe_of(champion, evaluation)
    assert recipe.iteration_id == "c" and recipe.backbone == "efficientnet-lite2" and recipe.multilabel
    assert recipe.seen == {"a", "b"}
