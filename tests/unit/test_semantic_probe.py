"""Advanced classification's recipes: the semantic probe (training_job/semantic.py: its relevance scales, the fold
into one head on the pooled features that the export relies on, a fit that finds the ImageNet classes that tell
the tags apart) and the rule that keeps fine-tuning only where it wins the folds clearly."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training_job.classifier import probabilities
from training_job.scoring import Candidate, clearly_better, score
from training_job.semantic import fit_semantic, fold, relevance

FEATURES, CLASSES = 16, 12


def imagenet_layer(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(FEATURES, CLASSES).requires_grad_(False)


def test_relevance_is_relative_to_the_most_evoked_class_and_skips_tags_without_images() -> None:
    logits = torch.full((4, CLASSES), -20.0)
    logits[:2, 3] = 10.0  # tag 0's images: class 3
    logits[2:, 7] = 9.0  # tag 1's images: class 7, a little less sure
    truth = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], dtype=np.float32)  # tag 2: no image
    scales = relevance(logits, truth)
    assert torch.isfinite(scales).all()
    assert scales[3] == 1 and 0.99 < scales[7] <= 1
    assert scales[[c for c in range(CLASSES) if c not in (3, 7)]].max() < 1e-6  # never evoked


def test_the_folded_head_on_pooled_features_computes_the_probe_on_scaled_logits() -> None:
    imagenet = imagenet_layer()
    probe = nn.Linear(CLASSES, 3).requires_grad_(False)
    scales = torch.rand(CLASSES)
    features = torch.randn(5, FEATURES)
    folded = fold(probe, scales, imagenet)
    torch.testing.assert_close(folded(features), probe(imagenet(features) * scales), atol=1e-5, rtol=1e-5)


def test_the_fit_tells_tags_apart_through_the_classes_their_images_evoke() -> None:
    """Two tags whose images differ only along the directions two ImageNet classes read: the probe finds them
    from 6 images with 2 views each, and classifies fresh images of each."""
    imagenet = imagenet_layer(1)
    generator = np.random.default_rng(0)
    pinv = torch.linalg.pinv(imagenet.weight).numpy()  # features -> a chosen logit pattern

    def images(tag: int, count: int) -> np.ndarray:
        logits = generator.normal(0, 0.3, (count, CLASSES))
        logits[:, 2 + tag] += 4  # tag 0 evokes class 2, tag 1 class 3
        return ((logits - imagenet.bias.numpy()) @ pinv.T).astype(np.float32)

    train = np.stack([np.concatenate([images(0, 3), images(1, 3)]) for _ in range(2)], axis=1)
    truth = np.repeat(np.eye(2, dtype=np.float32), 3, axis=0)
    head = fit_semantic(train, truth, multilabel=False, imagenet=imagenet)
    assert isinstance(head, nn.Linear) and head.in_features == FEATURES
    fresh = torch.from_numpy(np.concatenate([images(0, 10), images(1, 10)]))
    predicted = probabilities(head(fresh), multilabel=False).argmax(1).numpy()
    np.testing.assert_array_equal(predicted, np.repeat([0, 1], 10))


def candidate(oof: np.ndarray, truth: np.ndarray) -> Candidate:
    return Candidate(oof, score(oof, truth, multilabel=False), final=lambda: None)  # type: ignore[arg-type,return-value]


def test_fine_tuning_must_win_the_folds_by_more_than_the_noise_of_its_score() -> None:
    """A challenger whose log loss is lower on average but on only some images is not clearly better; one lower
    on every image is; one that scores worse never is."""
    truth = np.repeat(np.eye(2, dtype=np.float32), 5, axis=0)
    right = truth.argmax(1)

    def confident(p_right: list[float]) -> np.ndarray:
        oof = np.empty((10, 2), dtype=np.float32)
        oof[np.arange(10), right] = p_right
        oof[np.arange(10), 1 - right] = 1 - np.array(p_right)
        return oof

    linear = candidate(confident([0.8] * 10), truth)
    lucky = candidate(confident([0.99] * 4 + [0.72] * 6), truth)
    steady = candidate(confident([0.9] * 10), truth)
    assert lucky.score.key() > linear.score.key() and not clearly_better(
        lucky, linear, truth, multilabel=False
    )
    assert clearly_better(steady, linear, truth, multilabel=False)
    assert not clearly_better(linear, steady, truth, multilabel=False)
