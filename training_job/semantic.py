"""The semantic probe, one of Advanced training's recipes: a linear head on the backbone's own ImageNet classifier
outputs (1000 logits) instead of on its pooled features. The ImageNet classifier was trained on a million
photos, so its logits carry what a dozen of the user's photos cannot teach a head on 1280 raw features; where
the photos are small and blurry that was worth 2 to 4 points of accuracy (bench/fewshot.py).

Each logit is scaled by how much the tags' training images evoke its class (`relevance`), so the head's L2
penalty leaves classes the photos never evoke all but unusable; no class is picked by hand. The head is linear
in the pooled features, so it folds into one `nn.Linear` on them (`fold`): the exported model, its calibration
and its check are the same as Regular's. It is cross-validated on the same folds and kept only where it scores
better than the other recipes there."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training_job.classifier import Classifier, FeatureExtractor, fit_head, head_targets
from training_job.regular import WEIGHT_DECAY, out_of_fold
from training_job.scoring import Candidate, score

# (share of the tags' mean probability held by an ImageNet class) ** RELEVANCE_EXPONENT scales its logit. Chosen
# with the weight decay on hymenoptera shrunk to 64 px (0.5 and 0.75 within 0.2 points; a probe on the plain
# logits lost to Regular); held up at 48 and 96 px and at full size.
RELEVANCE_EXPONENT = 0.5


def relevance(imagenet_logits: torch.Tensor, truth: np.ndarray) -> torch.Tensor:
    """[C] scales in 0..1: for each ImageNet class, its mean probability over each tag's images (the tags that
    have some: a fold of a multilabel project may lack one), the largest over the tags, relative to the top
    class's, to the power RELEVANCE_EXPONENT."""
    probabilities = torch.softmax(imagenet_logits, dim=-1)
    tagged = torch.from_numpy(truth).bool()
    per_tag = torch.stack([probabilities[rows].mean(0) for rows in tagged.T if rows.any()])
    largest = per_tag.max(0).values
    return (largest / largest.max()) ** RELEVANCE_EXPONENT


def fold(probe: nn.Linear, scales: torch.Tensor, imagenet: nn.Linear) -> nn.Linear:
    """`probe` (on scaled ImageNet logits) as one head on the pooled features: W = P diag(s) W_fc,
    b = P diag(s) b_fc + c."""
    scaled = probe.weight * scales
    head = nn.Linear(imagenet.in_features, probe.out_features).requires_grad_(False)
    head.weight.copy_(scaled @ imagenet.weight)
    head.bias.copy_(scaled @ imagenet.bias + probe.bias)
    return head


def fit_semantic(features: np.ndarray, truth: np.ndarray, multilabel: bool, imagenet: nn.Linear) -> nn.Linear:
    """The semantic probe fitted on every view of the given samples ([n, V, D] pooled features, [n, L] truth),
    folded into a head on the pooled features. The scales come from these samples alone, so a fold's probe
    never sees the images it is scored on."""
    views = features.shape[1]
    truth_per_view = np.repeat(truth, views, axis=0)
    with torch.no_grad():
        logits = imagenet(torch.from_numpy(features.reshape(-1, features.shape[-1])))
    scales = relevance(logits, truth_per_view)
    probe = fit_head(
        logits * scales, head_targets(truth_per_view, multilabel), truth.shape[1], multilabel, WEIGHT_DECAY
    )
    return fold(probe, scales, imagenet)


def train_semantic(
    extractor: FeatureExtractor,
    features: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    multilabel: bool,
    imagenet: nn.Linear,
) -> Candidate:
    """The semantic probe cross-validated on the given folds, from the frozen backbone's pooled features of
    every view ([N, V, D]: the serving view first, which the held-out samples are scored on)."""

    def fit(fold_features: np.ndarray, fold_truth: np.ndarray) -> nn.Linear:
        return fit_semantic(fold_features, fold_truth, multilabel, imagenet)

    oof, _ = out_of_fold(features, truth, folds, multilabel, fit=fit)

    def final() -> Classifier:
        return Classifier(extractor, fit(features, truth), multilabel)

    return Candidate(oof, score(oof, truth, multilabel), final)
