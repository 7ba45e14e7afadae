"""How a cross-validated classifier is judged: its out-of-fold probabilities' mean average precision over
labels (Custom Vision's headline), then log loss; and a candidate that carries its score to the final choice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.vision.metrics import ranked_average_precision
from training_job.calibration import negative_log_likelihood
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
