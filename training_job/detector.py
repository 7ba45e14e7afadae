"""The object detector that is trained and exported: an FCOS-style anchor-free head on the levels of a frozen
ImageNet EfficientNet-Lite (stride 16 and stride 32, merged at stride 16; for small objects a stride-8 level too,
which the head's output grid follows), then decoding and non-maximum suppression inside the model, so the
exported ONNX file alone gives final boxes.

Every location of the output grid predicts a score per tag, a centerness and its distances to the four sides
of a box. Suppression is Cluster-NMS (Zheng et al., 2021): Fast-NMS repeated a fixed number of times, which
reaches standard greedy NMS's result for the usual handful of overlapping boxes, and which is only tensor
operations, so torch and ONNX Runtime run the very same graph, batched."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional
from torchvision.ops import sigmoid_focal_loss

from pipeline.contract.detection import DETECTION
from training_job.backbones import PooledFeatures
from training_job.classifier import Normalise

PRIOR = 0.01  # initial foreground probability (RetinaNet's focal-loss prior)


COARSEST_STRIDE = 32  # the backbone's last map


class Levels(nn.Module):
    """0..255 RGB [N, 3, S, S] -> the frozen backbone's maps, finest first: stride `finest_stride` (16, or 8 for
    small objects), every coarser power of two, and stride 32."""

    def __init__(self, backbone: PooledFeatures, finest_stride: int = DETECTION.stride) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.backbone = backbone
        self.strides: tuple[int, ...] = tuple(
            finest_stride * 2**k for k in range(int(math.log2(COARSEST_STRIDE // finest_stride)) + 1)
        )
        self.splits = tuple(backbone.stride_end(stride) for stride in self.strides[:-1])

    @property
    def names(self) -> tuple[str, ...]:
        """The maps' output names when the backbone alone is exported (training's passes)."""
        return tuple(f"stride{stride}" for stride in self.strides)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.backbone.levels(self.normalise(x), self.splits)


def _conv(channels_in: int, channels_out: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, kernel, padding=kernel // 2)


def _separable(width: int) -> list[nn.Module]:
    """A depthwise 3x3 then pointwise convolution: about 8x cheaper than a full 3x3 at 96 channels (the head
    trains on two CPU cores), as EfficientDet's heads do."""
    return [nn.Conv2d(width, width, 3, padding=1, groups=width), _conv(width, width, 1), nn.ReLU()]


class TopDown(nn.Module):
    """A light FPN top-down step: stride-16 features upsampled, summed with the stride-8 map's projection and
    refined by one separable convolution, so small objects get 8-pixel cells while the tower stays at stride 16."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.project = _conv(channels, width, 1)
        self.refine = nn.Sequential(*_separable(width))

    def forward(self, features: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        upsampled = functional.interpolate(features, size=detail.shape[-2:], mode="nearest")
        return self.refine(functional.relu(self.project(detail) + upsampled))


class Head(nn.Module):
    """The stride-16 and stride-32 levels projected to `width` channels and summed at stride 16, a shared
    separable tower; with a stride-8 level (`channels` has three entries, finest first), a `TopDown` step brings
    the tower's output to that level's grid. Then per
    location of the finest grid: tag logits [N, C, G, G], box side distances (log, in grid cells) [N, 4, G, G],
    centerness logit [N, 1, G, G]."""

    def __init__(self, channels: Sequence[int], num_classes: int, width: int, depth: int) -> None:
        super().__init__()
        *finest, fine, coarse = channels
        self.fine = _conv(fine, width, 1)
        self.coarse = _conv(coarse, width, 1)
        self.tower = nn.Sequential(*[layer for _ in range(depth) for layer in _separable(width)])
        self.top_down = TopDown(finest[0], width) if finest else None
        self.classes = _conv(width, num_classes)
        self.sides = _conv(width, 4)
        self.centerness = _conv(width, 1)
        nn.init.constant_(self.classes.bias, -math.log((1 - PRIOR) / PRIOR))
        for layer in (self.classes, self.sides, self.centerness):
            nn.init.normal_(layer.weight, std=0.01)

    def forward(self, *maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *finest, fine, coarse = maps
        merged = self.fine(fine) + functional.interpolate(
            self.coarse(coarse), size=fine.shape[-2:], mode="nearest"
        )
        features = self.tower(functional.relu(merged))
        if self.top_down is not None:
            (detail,) = finest
            features = self.top_down(features, detail)
        return self.outputs(features)

    def outputs(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three output convolutions run as one, their weights stacked: a 3x3 convolution to 1 or 4 channels
        costs nearly as much as one to all of them (on one CPU thread, a batch's forward and backward of the
        three took 32 ms apart and 12 to 17 ms as one; a GPU step dispatches as many kernels either way, 530
        against 526). They stay three layers, which is the state a warm start reads; the exported graph folds
        them into one."""
        layers = (self.classes, self.sides, self.centerness)
        outputs = functional.conv2d(
            features,
            torch.cat([layer.weight for layer in layers]),
            torch.cat([layer.bias for layer in layers]),
            padding=self.classes.padding,
        )
        logits, sides, centerness = outputs.split([layer.out_channels for layer in layers], dim=1)
        return logits, sides, centerness


def grid_centres(grid: int, device: torch.device | None = None) -> torch.Tensor:
    """[G * G, 2] (x, y) centres of the grid cells, normalised 0..1, row-major like the flattened maps; made on
    `device` rather than copied there, which on a GPU would wait for its queue."""
    steps = (torch.arange(grid, dtype=torch.float32, device=device) + 0.5) / grid
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=1)


def decode(
    logits: torch.Tensor, sides: torch.Tensor, centerness: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Head outputs -> corner boxes [N, A, 4] (x0, y0, x1, y1, normalised, clipped) and scores [N, A, C]."""
    grid = logits.shape[-1]
    centres = grid_centres(grid).to(logits.device, logits.dtype)
    distances = torch.exp(sides.flatten(2).transpose(1, 2).clamp(max=math.log(2 * grid))) / grid
    corners = torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], dim=-1).clamp(0, 1)
    scores = torch.sqrt(
        torch.sigmoid(logits.flatten(2).transpose(1, 2))
        * torch.sigmoid(centerness.flatten(2).transpose(1, 2))
    )
    return corners, scores


def _area(corners: torch.Tensor) -> torch.Tensor:
    """Areas of corner boxes [..., 4], width times height: `prod`'s gradient would ask the device whether a side
    is zero (see giou_loss)."""
    sides = corners[..., 2:] - corners[..., :2]
    return sides[..., 0] * sides[..., 1]


def _intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overlap areas of corner boxes [..., 4] that broadcast against each other; 0 where they do not meet."""
    overlap = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    return overlap[..., 0] * overlap[..., 1]


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of corner boxes [..., M, 4] x [..., K, 4] -> [..., M, K]. Written here, not torchvision.ops.box_iou,
    because decoded boxes clipped at the image's edge can have no area: box_iou then divides 0 by 0, and a NaN
    overlap would suppress a box in the exported model; this one counts it as no overlap. A test proves the two
    equal wherever box_iou is defined."""
    intersection = _intersection(a[..., :, None, :], b[..., None, :, :])
    return intersection / (_area(a)[..., :, None] + _area(b)[..., None, :] - intersection).clamp(min=1e-9)


def giou_loss(predicted: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 - GIoU of corner boxes [..., 4] paired element by element, as torchvision.ops.generalized_box_iou_loss
    computes it. Written here because torchvision's picks the overlapping pairs out with a boolean mask, which on a
    GPU makes every training step wait for the queue (see detection_loss); this clamps the overlap instead. A test
    proves the two equal, gradients too."""
    intersection = _intersection(predicted, target)
    union = _area(predicted) + _area(target) - intersection
    enclosing = _area(
        torch.cat(
            [
                torch.minimum(predicted[..., :2], target[..., :2]),
                torch.maximum(predicted[..., 2:], target[..., 2:]),
            ],
            dim=-1,
        )
    )
    return 1 - (intersection / (union + eps) - (enclosing - union) / (enclosing + eps))


def suppress(
    corners: torch.Tensor,
    scores: torch.Tensor,
    max_detections: int = DETECTION.max_detections,
    nms_iou: float = DETECTION.nms_iou,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-tag non-maximum suppression, batched: corners [N, A, 4], scores [N, A, C] -> the best
    `max_detections` boxes per image as (left, top, width, height) [N, K, 4], scores [N, K] (0 pads) and tags
    [N, K] (int64), by falling score; a box overlapping a better one of its tag by more than `nms_iou` goes.
    Written here, not torchvision.ops.batched_nms, because it is part of the exported model: fixed shapes, batched over images, and only tensor operations, so ONNX Runtime runs the same
    graph as torch (batched_nms takes one image and returns as many boxes as survive, and exports as an ONNX
    NonMaxSuppression whose output size depends on the data); a test proves it keeps batched_nms's boxes."""
    classes = scores.shape[-1]
    flat = scores.flatten(1)
    top_scores, top_index = flat.topk(min(DETECTION.candidates, flat.shape[1]), dim=1)
    location, tag = top_index // classes, top_index % classes
    boxes = torch.gather(corners, 1, location[..., None].expand(-1, -1, 4))
    same_tag = (tag[:, :, None] == tag[:, None, :]).to(boxes.dtype)
    overlaps = torch.triu(pairwise_iou(boxes, boxes) * same_tag, diagonal=1)  # [i, j]: i scores higher
    keep = torch.ones_like(top_scores)
    for _ in range(DETECTION.nms_rounds):
        keep = ((overlaps * keep[:, :, None]).amax(dim=1) <= nms_iou).to(boxes.dtype)
    kept_scores = top_scores * keep * (top_scores >= DETECTION.min_score).to(boxes.dtype)
    final_scores, order = kept_scores.topk(min(max_detections, kept_scores.shape[1]), dim=1)
    final_boxes = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4))
    final_boxes = torch.cat([final_boxes[..., :2], final_boxes[..., 2:] - final_boxes[..., :2]], dim=-1)
    present = (final_scores > 0).to(boxes.dtype)
    return final_boxes * present[..., None], final_scores, torch.gather(tag, 1, order) * present.long()


class Detector(nn.Module):
    """0..255 RGB [N, 3, S, S] (the whole image stretched, `preprocess_full`) -> (boxes [N, K, 4] normalised
    (left, top, width, height), scores [N, K], tag indexes [N, K])."""

    def __init__(self, levels: Levels, head: Head, nms_iou: float = DETECTION.nms_iou) -> None:
        super().__init__()
        self.levels = levels
        self.head = head
        self.nms_iou = nms_iou  # a constant of the exported graph

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return suppress(*decode(*self.head(*self.levels(x))), nms_iou=self.nms_iou)


class Targets:
    """What each grid location of one view should predict: a tag index (-1: background), the box it belongs to
    (x0, y0, x1, y1) and its centerness. A location inside several boxes takes the smallest; the cell holding a
    box's centre always belongs to it, so boxes smaller than a cell are learnt too."""

    def __init__(self, tags: torch.Tensor, corners: torch.Tensor, centerness: torch.Tensor) -> None:
        self.tags = tags
        self.corners = corners
        self.centerness = centerness

    @classmethod
    def stack(cls, items: Sequence[Targets]) -> Targets:
        return cls(
            *(torch.stack([getattr(t, name) for t in items]) for name in ("tags", "corners", "centerness"))
        )

    def take(self, index: torch.Tensor) -> Targets:
        return Targets(self.tags[index], self.corners[index], self.centerness[index])

    def to(self, device: torch.device) -> Targets:
        return Targets(self.tags.to(device), self.corners.to(device), self.centerness.to(device))

    @classmethod
    def assign(cls, boxes: torch.Tensor, tags: torch.Tensor, grid: int) -> Targets:
        """`boxes` [n, 4] (left, top, width, height, normalised), `tags` [n] -> targets for G * G locations."""
        cells = grid * grid
        if len(boxes) == 0:
            return cls(torch.full((cells,), -1), torch.zeros(cells, 4), torch.zeros(cells))
        corners = torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1)
        centres = grid_centres(grid)
        near = centres[:, None, :] - corners[None, :, :2]  # [A, n, 2]: left, top
        far = corners[None, :, 2:] - centres[:, None, :]  # right, bottom
        inside = torch.minimum(near.amin(-1), far.amin(-1)) > 0
        middle = ((corners[:, :2] + corners[:, 2:]) / 2 * grid).long().clamp(0, grid - 1)
        inside[middle[:, 1] * grid + middle[:, 0], torch.arange(len(boxes))] = True
        area = torch.where(inside, (boxes[:, 2] * boxes[:, 3])[None, :], torch.inf)
        best = area.argmin(dim=1)
        positive = inside.any(dim=1)
        chosen = torch.arange(cells)
        sides_near, sides_far = near[chosen, best].clamp(min=1e-6), far[chosen, best].clamp(min=1e-6)
        ratio = torch.minimum(sides_near, sides_far) / torch.maximum(sides_near, sides_far)
        return cls(
            torch.where(positive, tags[best], -1),
            corners[best],
            torch.where(positive, ratio.prod(-1).sqrt(), 0.0),
        )


def detection_loss(
    logits: torch.Tensor, sides: torch.Tensor, centerness: torch.Tensor, targets: Targets
) -> torch.Tensor:
    """FCOS's loss for a batch whose targets are stacked ([B, A], [B, A, 4], [B, A]): sigmoid focal loss over
    every location and tag (torchvision.ops), GIoU on the positives weighted by their centerness (`giou_loss`), and
    centerness BCE.

    The positives' terms are sums over every location masked to the positives, not sums over the positives picked
    out: picking them out (or asking whether there are any) makes the host read a count from the device, and on
    a GPU every such read waits for all queued work, of every head training beside this one (training_job.device).
    A test proves the loss equal to the picked-out form and free of such reads."""
    num_classes = logits.shape[1]
    scores = logits.flatten(2).transpose(1, 2)  # [B, A, C]
    positive = (targets.tags >= 0).to(scores.dtype)
    # a background location's tag, -1, matches no tag: its row is all zeros
    one_hot = (targets.tags[..., None] == torch.arange(num_classes, device=logits.device)).to(scores.dtype)
    count = positive.sum().clamp(min=1)
    classification = sigmoid_focal_loss(scores, one_hot, alpha=0.25, gamma=2.0, reduction="sum") / count
    grid = logits.shape[-1]
    distances = torch.exp(sides.flatten(2).transpose(1, 2).clamp(max=math.log(2 * grid))) / grid
    centres = grid_centres(grid, logits.device)
    predicted = torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], dim=-1)
    weight = targets.centerness * positive  # a background location's target box is a stand-in: weight 0
    giou = giou_loss(predicted, targets.corners)
    boxes = (giou * weight).sum() / weight.sum().clamp(min=1e-6)
    centred = (
        functional.binary_cross_entropy_with_logits(centerness.flatten(1), weight, reduction="none")
        * positive
    ).sum() / count
    return classification + boxes + centred
