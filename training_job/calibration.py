"""Temperature scaling on the out-of-fold predictions: one temperature T, fitted by likelihood on what each
fold model said about images it did not see, divides the final head's logits. One T for every tag (softmax or
per-tag sigmoid) keeps every ranking, so top-1, average precision and the Performance page's ordering do not
change; only how far probabilities sit from 0 and 1 does. Pure numpy, so each rule is unit-testable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15
_LOG_T_RANGE = (-3.0, 3.0)  # T between 0.05 and 20
# A gaussian prior on log T (standard deviation 0.5, worth one image's likelihood each): where every out-of-fold
# prediction is right (a few easy images), the likelihood alone keeps falling as T -> 0 and would make the model
# certain of everything; with hundreds of images the data decide (hymenoptera, 244 images: T = 0.71, against
# 0.66 without the prior; val ECE 0.035 -> 0.033, against 0.029: one or two of its 153 images either way).
_LOG_T_PRIOR_SD = 0.5
_EPSILON = 1e-7


@dataclass(frozen=True)
class Calibration:
    """The fitted temperature, the expected calibration error of the out-of-fold probabilities before and after
    it, and those probabilities after it (what the Performance page should describe: the served model)."""

    temperature: float
    ece_before: float
    ece_after: float
    oof: np.ndarray


def logits_of(probabilities: np.ndarray, multilabel: bool) -> np.ndarray:
    """Logits that give `probabilities` back: the exact logit per tag (sigmoid), log-probabilities (softmax is
    unchanged by a constant per row, so these scale exactly like the head's logits)."""
    p = np.clip(probabilities.astype(np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(p) - np.log1p(-p) if multilabel else np.log(p)


def scaled(logits: np.ndarray, temperature: float, multilabel: bool) -> np.ndarray:
    """Probabilities of `logits` / `temperature`."""
    z = logits / temperature
    if multilabel:
        return 1 / (1 + np.exp(-z))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def per_image_log_loss(probabilities: np.ndarray, truth: np.ndarray, multilabel: bool) -> np.ndarray:
    """[N] cross-entropy of each image against the 0/1 [N, L] truth (multilabel: the mean over its tags)."""
    p = np.clip(probabilities, _EPSILON, 1 - _EPSILON)
    if multilabel:
        return -(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean(axis=1)
    return -np.log(p[truth.astype(bool)])


def negative_log_likelihood(probabilities: np.ndarray, truth: np.ndarray, multilabel: bool) -> float:
    """Mean cross-entropy against the 0/1 [N, L] truth (per tag for multilabel)."""
    return float(per_image_log_loss(probabilities, truth, multilabel).mean())


def fit_temperature(logits: np.ndarray, truth: np.ndarray, multilabel: bool) -> float:
    """The T > 0 with the least negative log-likelihood plus the prior on log T: golden-section search on
    log T (the cost is unimodal in it), 1.0 when there is nothing to fit."""
    if logits.size == 0:
        return 1.0
    prior_weight = 1 / (2 * _LOG_T_PRIOR_SD**2 * len(logits))

    def cost(log_t: float) -> float:
        likelihood = negative_log_likelihood(
            scaled(logits, float(np.exp(log_t)), multilabel), truth, multilabel
        )
        return likelihood + prior_weight * log_t**2

    low, high = _LOG_T_RANGE
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    cost_a, cost_b = cost(a), cost(b)
    for _ in range(60):
        if cost_a < cost_b:
            high, b, cost_b = b, a, cost_a
            a = high - ratio * (high - low)
            cost_a = cost(a)
        else:
            low, a, cost_a = a, b, cost_b
            b = low + ratio * (high - low)
            cost_b = cost(b)
    return float(np.exp((low + high) / 2))


def expected_calibration_error(
    probabilities: np.ndarray, truth: np.ndarray, multilabel: bool, bins: int = ECE_BINS
) -> float:
    """How far confidence is from accuracy, weighted over equal-width confidence bins. Multiclass: the top tag's
    probability against whether it is right. Multilabel: every per-tag decision (p >= 0.5 or not), its
    confidence max(p, 1 - p) against whether it is right."""
    if probabilities.size == 0:
        return 0.0
    if multilabel:
        confidence = np.maximum(probabilities, 1 - probabilities).ravel()
        correct = ((probabilities >= 0.5) == truth.astype(bool)).ravel()
    else:
        confidence = probabilities.max(axis=1)
        correct = truth[np.arange(len(truth)), probabilities.argmax(axis=1)].astype(bool)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(float(confidence[members].mean()) - float(correct[members].mean()))
    return float(error)


def calibrate(oof: np.ndarray, truth: np.ndarray, multilabel: bool) -> Calibration:
    """Fit T on the out-of-fold probabilities `oof` ([N, L]) against the 0/1 `truth`."""
    logits = logits_of(oof, multilabel)
    temperature = fit_temperature(logits, truth, multilabel)
    after = scaled(logits, temperature, multilabel).astype(np.float32)
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(oof, truth, multilabel),
        ece_after=expected_calibration_error(after, truth, multilabel),
        oof=after,
    )
