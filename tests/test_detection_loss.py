"""The detection loss as the heads train on it: equal to FCOS's loss over the positives picked out, and computed
without ever reading a value back from the device (on a GPU each such read waits for every head's queued work)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional
from torch.profiler import profile
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from training_job.detector import Targets, detection_loss, giou_loss, grid_centres

GRID = 12
CLASSES = 3
# The operators by which the host reads a tensor's value, or its count of selected elements, from its device.
HOST_READS = {
    "aten::nonzero",
    "aten::_local_scalar_dense",
    "aten::is_nonzero",
    "aten::item",
    "aten::masked_select",
}


def batch(
    boxes_per_view: list[int], seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Targets]:
    """Head outputs (requiring gradients) and stacked targets for views with that many random boxes each."""
    generator = torch.Generator().manual_seed(seed)
    views = []
    for count in boxes_per_view:
        corner = torch.rand(count, 2, generator=generator) * 0.6
        size = 0.05 + torch.rand(count, 2, generator=generator) * 0.35
        tags = torch.randint(0, CLASSES, (count,), generator=generator)
        views.append(Targets.assign(torch.cat([corner, size], dim=1), tags, GRID))
    n = len(boxes_per_view)
    outputs = (
        torch.randn(n, CLASSES, GRID, GRID, generator=generator),
        torch.randn(n, 4, GRID, GRID, generator=generator) * 0.5,
        torch.randn(n, 1, GRID, GRID, generator=generator),
    )
    return (*(output.requires_grad_() for output in outputs), Targets.stack(views))


def picked_out_loss(
    logits: torch.Tensor, sides: torch.Tensor, centerness: torch.Tensor, targets: Targets
) -> torch.Tensor:
    """FCOS's loss written the obvious way, over the positive locations selected by a boolean mask."""
    scores = logits.flatten(2).transpose(1, 2)
    positive = targets.tags >= 0
    one_hot = functional.one_hot(targets.tags.clamp(min=0), CLASSES).float() * positive[..., None]
    count = positive.sum().clamp(min=1)
    classification = sigmoid_focal_loss(scores, one_hot, alpha=0.25, gamma=2.0, reduction="sum") / count
    if not positive.any():
        return classification
    distances = torch.exp(sides.flatten(2).transpose(1, 2).clamp(max=math.log(2 * GRID))) / GRID
    centres = grid_centres(GRID)[None].expand(len(logits), -1, -1)
    predicted = torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], dim=-1)[positive]
    weight = targets.centerness[positive]
    giou = generalized_box_iou_loss(predicted, targets.corners[positive], reduction="none")
    boxes = (giou * weight).sum() / weight.sum()
    centred = (
        functional.binary_cross_entropy_with_logits(centerness.flatten(1)[positive], weight, reduction="sum")
        / count
    )
    return classification + boxes + centred


@pytest.mark.parametrize("boxes_per_view", [[2, 0, 5, 1], [0, 0], [1]], ids=["mixed", "no boxes", "one box"])
def test_the_loss_and_its_gradients_equal_the_picked_out_form(boxes_per_view: list[int]) -> None:
    *outputs, targets = batch(boxes_per_view)
    loss = detection_loss(*outputs, targets)
    gradients = torch.autograd.grad(loss, outputs)
    expected = picked_out_loss(*outputs, targets)
    # with no positives the reference's box terms are absent: their outputs get no gradient, as zero
    expected_gradients = torch.autograd.grad(expected, outputs, allow_unused=True, materialize_grads=True)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for got, want in zip(gradients, expected_gradients, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_the_loss_and_its_backward_never_read_a_value_back_from_the_device() -> None:
    *outputs, targets = batch([2, 0, 5, 1])
    with profile() as profiled:
        detection_loss(*outputs, targets).backward()
    operators = {event.name for event in profiled.events()}
    assert "aten::binary_cross_entropy_with_logits" in operators  # the profile saw the loss
    assert not operators & HOST_READS, operators & HOST_READS


def test_giou_loss_is_torchvisions_with_its_gradients() -> None:
    generator = torch.Generator().manual_seed(1)
    corner = torch.rand(400, 2, generator=generator)
    predicted = torch.cat([corner, corner + 0.01 + torch.rand(400, 2, generator=generator) * 0.5], dim=1)
    corner = torch.rand(400, 2, generator=generator)
    target = torch.cat([corner, corner + 0.01 + torch.rand(400, 2, generator=generator) * 0.5], dim=1)
    target[:20] = 0  # a background location's stand-in box of an image without boxes: no area
    predicted.requires_grad_()
    ours = giou_loss(predicted, target)
    theirs = generalized_box_iou_loss(predicted, target, reduction="none")
    overlapping = (
        torch.minimum(predicted[:, 2:], target[:, 2:]) > torch.maximum(predicted[:, :2], target[:, :2])
    ).all(1)
    assert 50 < int(overlapping.sum()) < 350  # overlapping pairs and apart ones alike
    torch.testing.assert_close(ours, theirs)
    weights = torch.rand(400, generator=generator)
    torch.testing.assert_close(
        torch.autograd.grad((ours * weights).sum(), predicted)[0],
        torch.autograd.grad((theirs * weights).sum(), predicted)[0],
    )
