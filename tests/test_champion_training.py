"""The champion's out-of-fold score beside a classifier's training (training_job/champion.py), on small generated
pictures (no Azurite): a champion that was trained on every image ties with the challenger's Regular recipe, so it
is kept; one that never saw a tag loses, so the challenger is published. efficientnet-lite0 keeps it quick."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import PublishDecision
from tests.images import make_image, pattern_image
from training_job.champion import ChampionRecipe, decide
from training_job.samples import Sample
from training_job.train import Recipe, TrainingResult, train_classifier

BACKBONE = "efficientnet-lite0"
LABELS = [ModelLabel("warm", "warm"), ModelLabel("cool", "cool"), ModelLabel("green", "green")]


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    """Five pictures of each of three easily told apart families."""
    pictures = [
        *(decoded(pattern_image(0, seed)) for seed in range(5)),
        *(decoded(pattern_image(1, seed)) for seed in range(5)),
        *(decoded(make_image(color=(40, 170, 60), seed=seed)) for seed in range(5)),
    ]
    return [Sample(f"image-{row}", picture, {row // 5}) for row, picture in enumerate(pictures)]


def contest(samples: list[Sample], seen: set[str]) -> TrainingResult:
    champion = ChampionRecipe("champion", BACKBONE, multilabel=False, seen=frozenset(seen))
    return train_classifier(samples, LABELS, multilabel=False, backbone=BACKBONE, champion=champion)


def test_a_champion_trained_on_every_image_ties_and_is_kept(samples: list[Sample]) -> None:
    result = contest(samples, {s.image_id for s in samples})
    assert result.champion_score == result.scores[Recipe.REGULAR]
    outcome = decide(result.scores[result.recipe].comparable(), result.champion_score.comparable())
    assert outcome == PublishDecision.KEPT_CHAMPION


def test_a_champion_that_never_saw_a_tag_loses(samples: list[Sample]) -> None:
    result = contest(samples, {s.image_id for s in samples if 2 not in s.labels})
    assert result.champion_score is not None
    challenger = result.scores[result.recipe]
    # It gives the tag it never saw almost no probability: confidently wrong on those pictures.
    assert challenger.average_precision == 1.0 and challenger.log_loss < 0.1
    assert result.champion_score.average_precision < 1.0 and result.champion_score.log_loss > 1.0
    assert decide(challenger.comparable(), result.champion_score.comparable()) == PublishDecision.PUBLISHED
