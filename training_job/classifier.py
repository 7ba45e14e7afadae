"""The model that is trained and exported: normalisation, a pretrained backbone's pooled features, a linear
head, and softmax (multiclass) or sigmoid (multilabel), so its output is probabilities in the labels' order and
its input is plain 0..255 RGB as `pipeline.vision.preprocessing.preprocess` makes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from training_job.backbones import PooledFeatures, load_backbone

MEAN, SCALE = 127.0, 128.0  # TF-Lite EfficientNet-Lite convention, measured best on hymenoptera


class Normalise(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - MEAN) / SCALE


class FeatureExtractor(nn.Module):
    """0..255 RGB [N, 3, S, S] -> pooled backbone features [N, D]."""

    def __init__(self, backbone: PooledFeatures) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalise(x))


class Classifier(nn.Module):
    """0..255 RGB [N, 3, S, S] -> probabilities [N, num_labels]."""

    def __init__(self, features: FeatureExtractor, head: nn.Linear, multilabel: bool) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.multilabel = multilabel

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return probabilities(self.logits(x), self.multilabel)


def with_temperature(model: Classifier, temperature: float) -> Classifier:
    """`model` with its logits divided by `temperature`, folded into the head's weights (so the exported Gemm
    computes the calibrated logits and no export needs to know)."""
    head = nn.Linear(model.head.in_features, model.head.out_features).requires_grad_(False)
    with torch.no_grad():
        head.weight.copy_(model.head.weight / temperature)
        head.bias.copy_(model.head.bias / temperature)
    return Classifier(model.features, head, model.multilabel)


def probabilities(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=-1)


def feature_extractor(backbone: str) -> FeatureExtractor:
    return FeatureExtractor(load_backbone(backbone)).eval()


def head_targets(truth: np.ndarray, multilabel: bool) -> torch.Tensor:
    """What `loss` compares the logits with, from the 0/1 [N, L] truth: the rows (multilabel) or class indexes."""
    return torch.from_numpy(truth).float() if multilabel else torch.from_numpy(truth.argmax(1))


def loss(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Mean cross-entropy (multiclass, `targets` are class indexes) or binary cross-entropy per label
    (multilabel, `targets` are 0/1 rows)."""
    if multilabel:
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)
    return nn.functional.cross_entropy(logits, targets)


def fit_head(
    features: torch.Tensor,
    targets: torch.Tensor,
    num_labels: int,
    multilabel: bool,
    weight_decay: float,
    initial: nn.Linear | None = None,
) -> nn.Linear:
    """Regularised logistic regression on cached features, full batch with L-BFGS: a fraction of a second for
    a thousand feature rows, and deterministic. An L2 penalty (no label smoothing, which hurt both accuracy and
    log loss on hymenoptera) keeps the probabilities calibrated. The problem is convex, so starting from
    `initial` (a base iteration's head) reaches the same optimum in fewer steps."""
    dim = features.shape[1]
    start = (
        torch.cat([initial.weight.detach().flatten(), initial.bias.detach()])
        if initial is not None
        else torch.zeros(num_labels * (dim + 1))
    )

    def objective(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = params.detach().requires_grad_(True)
        weight, bias = params[: num_labels * dim].view(num_labels, dim), params[num_labels * dim :]
        value = (
            loss(features @ weight.T + bias, targets, multilabel) + weight_decay / 2 * weight.square().sum()
        )
        (gradient,) = torch.autograd.grad(value, params)
        return value.detach(), gradient

    with torch.enable_grad(), torch_threads(1):
        params = lbfgs(objective, start)
    head = nn.Linear(dim, num_labels).requires_grad_(False)
    head.weight.copy_(params[: num_labels * dim].view(num_labels, dim))
    head.bias.copy_(params[num_labels * dim :])
    return head


def lbfgs(
    objective: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    x: torch.Tensor,
    iterations: int = 100,
    memory: int = 20,
    tolerance: float = 1e-5,
) -> torch.Tensor:
    """Minimise a smooth convex `objective` (value, gradient) with L-BFGS and a backtracking line search.
    Written out because every torch.optim step imports torch._dynamo on first use: 1.5 s of a job whose whole
    budget on the Custom Vision quickstart is a few seconds."""
    value, gradient = objective(x)
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (s, y, 1 / y.s)
    for _ in range(iterations):
        if gradient.abs().max() <= tolerance:
            break
        direction = -gradient
        alphas = []
        for s, y, rho in reversed(history):
            alpha = rho * s.dot(direction)
            direction = direction - alpha * y
            alphas.append(alpha)
        if history:
            s, y, _ = history[-1]
            direction = direction * (s.dot(y) / y.dot(y))
        for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
            direction = direction + s * (alpha - rho * y.dot(direction))
        slope = gradient.dot(direction)
        step = 1.0 if history else min(1.0, 1.0 / float(gradient.abs().sum()))
        while True:
            candidate = x + step * direction
            new_value, new_gradient = objective(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step /= 2
        s, y = candidate - x, new_gradient - gradient
        if y.dot(s) > 1e-10:
            history = [*history[-(memory - 1) :], (s, y, 1 / y.dot(s))]
        x, value, gradient = candidate, new_value, new_gradient
    return x


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run tiny tensor work on one thread: on 2 shared cores, waking a second thread costs far more than the
    matrix products (measured 0.25 ms per step on one thread against 3-20 ms on two)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
