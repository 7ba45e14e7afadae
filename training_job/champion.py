"""Publishing a scheduled retrain only when it is better (a project's `publishBetterRetrains`, Seer's extension).

The champion is the project's published iteration, the challenger the scheduled retrain that just trained. Both
are scored out of fold on the same images, the challenger's training images in the challenger's folds: the
challenger by its own cross-validation; the champion by its recipe (its backbone and classification type) trained
per fold on only those images of the other folds that the champion itself was trained on (its evaluation lists
them), so it never sees the fold it is scored on, predicting the held-out fold. The scores are compared the way
the training job chooses between its candidates (mean average precision, then log loss for a classifier), and the
challenger takes the champion's publish name and prediction resource only when strictly better.

This module holds the pure parts (no torch): the recipe, the decision and which iteration is the champion; the
scoring itself lives beside each trainer (`train.champion_score`, `detect.champion_score`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.contract.evaluation import EvaluationRecord
from pipeline.core.domains import domain_of
from pipeline.core.vocabulary import ClassificationType, IterationStatus, PublishDecision
from pipeline.store.records import IterationRecord


@dataclass(frozen=True)
class Score:
    """An out-of-fold score: `value` is what users see (mean average precision), `key` what is compared (greater
    is better; ties go to the champion)."""

    value: float
    key: tuple[float, ...]


@dataclass(frozen=True)
class ChampionRecipe:
    """How the champion is retrained per fold: its iteration, backbone and classification type, and the images
    it was trained on."""

    iteration_id: str
    backbone: str
    multilabel: bool
    seen: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    decision: PublishDecision
    challenger: Score
    champion: Score | None = None


def decide(challenger: Score, champion: Score | None) -> PublishDecision:
    """Publish only a challenger that scores strictly better than the published champion."""
    if champion is None:
        return PublishDecision.NO_CHAMPION
    return PublishDecision.PUBLISHED if challenger.key > champion.key else PublishDecision.KEPT_CHAMPION


def find_champion(
    iterations: Sequence[IterationRecord], challenger: IterationRecord
) -> IterationRecord | None:
    """The published iteration a scheduled retrain competes with: the most recently trained published one of the
    same domain type (a project may publish several under different names; the newest is what its retrains
    replace)."""
    domain_type = domain_of(challenger.domain_id).type
    published = [
        i
        for i in iterations
        if i.id != challenger.id
        and i.publish_name
        and i.status == IterationStatus.COMPLETED
        and i.evaluation_blob
        and domain_of(i.domain_id).type == domain_type
    ]
    return max(published, key=lambda i: (i.trained_at or i.created, i.created), default=None)


def recipe_of(champion: IterationRecord, evaluation: EvaluationRecord) -> ChampionRecipe:
    return ChampionRecipe(
        iteration_id=champion.id,
        backbone=domain_of(champion.domain_id).backbone,
        multilabel=champion.classification_type == ClassificationType.MULTILABEL,
        seen=frozenset(image.image_id for image in evaluation.images),
    )
