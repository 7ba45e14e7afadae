"""How a cross-validated classifier is judged: its out-of-fold probabilities' mean average precision over
labels (Custom Vision's headline), then log loss; and a candidate that carries its score to the final choice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.vision.metrics import ranked_average_precision
from training_job.calibration import negative_log_likelihood, per_image_log_loss
from training_job.champion import Score
from training_job.classifier import Classifier


@dataclass(frozen=True)
class CvScore:
    average_precision: float
    log_loss: float

    def key(self) -> tuple[float, float]:
        return (self.average_precision, -self.log_loss)

    def comparable(self) -> Score:
        """As a retrain's contest compares it (training_job/champion)."""
        return Score(self.average_precision, self.key())


@dataclass(frozen=True)
class Candidate:
    """A cross-validated training: its out-of-fold probabilities, and how to build its final model if kept."""

    oof: np.ndarray
    score: CvScore
    final: Callable[[], Classifier]


def score(oof: np.ndarray, truth: np.ndarray, multilabel: bool) -> CvScore:
    """`truth` is the 0/1 [N, L] matrix of tags."""
    mean_ap = float(
        np.mean([ranked_average_precision(oof[:, j], truth[:, j]) for j in range(truth.shape[1])])
    )
    return CvScore(mean_ap, negative_log_likelihood(oof, truth, multilabel))


def clearly_better(challenger: Candidate, incumbent: Candidate, truth: np.ndarray, multilabel: bool) -> bool:
    """Whether `challenger` scores better than `incumbent` on the folds by more than the noise of that score: its
    per-image out-of-fold log loss is lower by more than one standard error of the paired differences (the
    one-standard-error rule). Fine-tuning millions of weights can win a contest on ten images by chance: on
    hymenoptera at 64 px, 5 and 10 per class, it won the folds in 5 of 20 draws, and on val its log loss was
    higher than the linear recipe's every time (docs/architecture.md, bench/fewshot.py)."""
    if challenger.score.key() <= incumbent.score.key():
        return False
    differences = per_image_log_loss(challenger.oof, truth, multilabel) - per_image_log_loss(
        incumbent.oof, truth, multilabel
    )
    if len(differences) < 2:
        return False
    standard_error = differences.std(ddof=1) / np.sqrt(len(differences))
    return bool(differences.mean() + standard_error < 0)
