"""The detector core on synthetic pictures (coloured rectangles on noisy backgrounds; no ../shared, no Azurite):
training with held-out folds, the ONNX contract (decoding and NMS inside) and its check against torch, boxes
found on new pictures, and the pieces (box-aware augmentation, targets, suppression, metrics) on cases small
enough to check by hand. efficientnet-lite0 at a small input size keeps it quick."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image, ImageDraw

from pipeline.contract.onnx_model import DETECTOR_OUTPUTS, MetadataKey, ModelLabel
from pipeline.core.boxes import Box
from pipeline.vision.metrics import DetectedImage, detection_average_precision, detection_performance
from pipeline.vision.preprocessing import FULL_PREPROCESSING, preprocess_full
from tests.images import detection_scene
from training_job import onnx_export as export
from training_job.backbones import load_backbone
from training_job.common import TrainingInputError
from training_job.detect import (
    ADVANCED_NMS_IOUS,
    DetectionResult,
    advanced_finest_stride,
    suppressed_on_folds,
    train_detector,
)
from training_job.detection_augment import detection_view
from training_job.detection_cache import DetectionSample, DetectorSettings, build_cache
from training_job.detection_heads import fit_heads, fit_held_out
from training_job.detection_tuning import coarse_blocks
from training_job.detector import Head, Levels, Targets, suppress

BACKBONE = "efficientnet-lite0"
SETTINGS = DetectorSettings(image_size=192, augmented_views=3, epochs=30, max_folds=2)
LABELS = [ModelLabel("t-red", "red"), ModelLabel("t-blue", "blue")]


def scene(seed: int) -> tuple[Image.Image, tuple[Box, ...]]:
    image, boxes = detection_scene(seed)
    width, height = image.size
    return image, tuple(
        Box(LABELS[tag].tag_id, x / width, y / height, w / width, h / height) for tag, x, y, w, h in boxes
    )


def samples(seeds: range) -> list[DetectionSample]:
    return [DetectionSample(f"scene-{seed}", *scene(seed)) for seed in seeds]


@pytest.fixture(scope="module")
def training() -> list[DetectionSample]:
    return samples(range(24))


@pytest.fixture(scope="module")
def trained(training: list[DetectionSample]) -> DetectionResult:
    return train_detector(training, LABELS, backbone=BACKBONE, settings=SETTINGS)


def run_onnx(result: DetectionResult, images: list[Image.Image]) -> list[np.ndarray]:
    session = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    pixels = np.stack([preprocess_full(image, result.image_size) for image in images])
    return session.run(list(DETECTOR_OUTPUTS), {"data": pixels})


@pytest.mark.slow
def test_onnx_finds_the_boxes_of_new_pictures(trained: DetectionResult) -> None:
    unseen = samples(range(1000, 1008))
    boxes, scores, tags = run_onnx(trained, [s.image for s in unseen])
    assert boxes.shape == (8, 200, 4) and scores.shape == (8, 200) and tags.shape == (8, 200)
    assert (np.diff(scores, axis=1) <= 0).all()  # by falling score, padded with 0
    for sample, image_boxes, image_scores, image_tags in zip(unseen, boxes, scores, tags, strict=True):
        for truth in sample.regions:
            found = [
                Box.iou(truth, Box(truth.tag_id, *map(float, box)))
                for box, score, tag in zip(image_boxes, image_scores, image_tags, strict=True)
                if score >= 0.5 and LABELS[tag].tag_id == truth.tag_id
            ]
            assert max(found, default=0.0) > 0.5, (sample.image_id, truth, found)


@pytest.mark.slow
def test_every_image_gets_out_of_fold_detections(
    trained: DetectionResult, training: list[DetectionSample]
) -> None:
    assert sorted(p.image_id for p in trained.fold_predictions) == sorted(s.image_id for s in training)
    assert trained.folds == 2 and {p.fold for p in trained.fold_predictions} == {0, 1}
    for prediction in trained.fold_predictions:
        assert len(prediction.detections) <= 200
        assert all(d.left >= 0 and d.left + d.width <= 1 + 1e-6 for d in prediction.detections)
    assert trained.cv_score > 0.7, trained.cv_score  # held-out mAP at 0.5 overlap


@pytest.mark.slow
def test_onnx_matches_torch_and_carries_metadata(
    trained: DetectionResult, training: list[DetectionSample]
) -> None:
    assert trained.export_difference <= export.DETECTION_TOLERANCE and trained.device == "cpu"
    pixels = np.stack([preprocess_full(s.image, trained.image_size) for s in training[:3]])
    boxes, scores, tags = run_onnx(trained, [s.image for s in training[:3]])
    with torch.inference_mode():
        expected = [t.numpy() for t in trained.model(torch.from_numpy(pixels))]
    confident = expected[1] > 0.3
    np.testing.assert_allclose(scores[confident], expected[1][confident], atol=1e-3)
    np.testing.assert_allclose(boxes[confident], expected[0][confident], atol=1e-3)
    np.testing.assert_array_equal(tags[confident], expected[2][confident])

    session = ort.InferenceSession(trained.onnx_model, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(DETECTOR_OUTPUTS)
    assert not isinstance(session.get_inputs()[0].shape[0], int)  # dynamic batch
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["labels"]) == [
        {"tag_id": lb.tag_id, "name": lb.name, "type": "Regular"} for lb in LABELS
    ]
    assert json.loads(metadata["preprocessing"]) == {**FULL_PREPROCESSING, "size": 192}
    assert json.loads(metadata["classification_type"]) is None
    assert metadata["domain_type"] == "ObjectDetection"


@pytest.mark.slow
def test_export_check_refuses_a_model_that_differs(
    trained: DetectionResult, training: list[DetectionSample]
) -> None:
    pixels = np.stack([preprocess_full(s.image, trained.image_size) for s in training[:2]])
    bias = trained.model.head.sides.bias
    with torch.no_grad():
        bias += 0.3
    try:
        with pytest.raises(export.ExportVerificationError):
            export.verify_detections(trained.onnx_model, trained.model, pixels)
    finally:
        with torch.no_grad():
            bias -= 0.3


def test_the_heads_outputs_are_one_convolution_equal_to_its_three_layers_gradients_too() -> None:
    """Head.outputs stacks the class, side and centerness layers into one convolution (faster); it must give what
    the three layers give apart, and their weights the same gradients."""
    torch.manual_seed(0)
    head = Head([24, 40], num_classes=3, width=16, depth=1)
    features = torch.randn(2, 16, 6, 6)
    weights = [torch.randn(2, n, 6, 6) for n in (3, 4, 1)]
    layers = (head.classes, head.sides, head.centerness)

    def gradients(outputs) -> list[torch.Tensor]:
        head.zero_grad()
        sum((output * weight).sum() for output, weight in zip(outputs, weights, strict=True)).backward()
        return [parameter.grad.clone() for layer in layers for parameter in (layer.weight, layer.bias)]

    together = head.outputs(features)
    apart = [layer(features) for layer in layers]
    for one, other in zip(together, apart, strict=True):
        torch.testing.assert_close(one, other)
    for one, other in zip(gradients(together), gradients(apart), strict=True):
        torch.testing.assert_close(one, other)


def test_bad_input_is_refused() -> None:
    image = scene(0)[0]
    with pytest.raises(TrainingInputError, match="at least 2"):
        train_detector(samples(range(1)), LABELS, backbone=BACKBONE, settings=SETTINGS)
    no_regions = [DetectionSample("a", image, ()), *samples(range(2))]
    with pytest.raises(TrainingInputError, match="no region"):
        train_detector(no_regions, LABELS, backbone=BACKBONE, settings=SETTINGS)
    only_red = [DetectionSample(str(i), image, (Box("t-red", 0.1, 0.1, 0.2, 0.2),)) for i in range(2)]
    with pytest.raises(TrainingInputError, match="blue"):
        train_detector(only_red, LABELS, backbone=BACKBONE, settings=SETTINGS)


def test_preprocess_full_keeps_the_whole_image() -> None:
    image = Image.new("RGB", (300, 100), (0, 0, 0))
    ImageDraw.Draw(image).rectangle([0, 0, 29, 99], fill=(255, 255, 255))  # the left tenth
    pixels = preprocess_full(image, 64)
    assert pixels.shape == (3, 64, 64) and pixels.dtype == np.float32
    assert pixels[:, :, :5].min() > 200 and pixels[:, :, 8:].max() < 60  # stretched, not cropped


def test_crop_and_flip_move_the_boxes() -> None:
    """Default views keep each box on its square (the geometry in detail: tests/unit/test_augmentation.py)."""
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    ImageDraw.Draw(image).rectangle([20, 10, 59, 49], fill=(255, 255, 255))
    truth = np.array([[0.1, 0.1, 0.2, 0.4]], dtype=np.float32)
    for seed in range(20):
        view, moved, kept = detection_view(image, truth, 64, random.Random(seed))
        if not kept.any():
            continue
        pixels = np.asarray(view.convert("L"), dtype=np.float32)
        left, top, width, height = moved[0] * 64
        inner = pixels[int(top + 2) : int(top + height - 2), int(left + 2) : int(left + width - 2)]
        assert inner.size == 0 or inner.mean() > 150, seed  # the moved box still covers the white square


def test_targets_give_small_boxes_their_centre_cell() -> None:
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.05, 0.05]])
    targets = Targets.assign(boxes, torch.tensor([0, 1]), grid=4)
    assert (targets.tags >= 0).all()  # every cell lies in the big box
    centre_cell = 2 * 4 + 2  # (0.525, 0.525) lies in cell (2, 2)
    assert targets.tags[centre_cell] == 1  # the small box wins its centre cell
    assert targets.tags.tolist().count(1) == 1
    assert torch.allclose(targets.corners[centre_cell], torch.tensor([0.5, 0.5, 0.55, 0.55]))
    empty = Targets.assign(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), grid=4)
    assert (empty.tags == -1).all()


def test_suppression_keeps_one_box_per_object_and_tag() -> None:
    corners = torch.tensor(
        [[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.6, 0.6, 0.9, 0.9], [0.1, 0.1, 0.5, 0.5]]]
    )
    scores = torch.tensor([[[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.0, 0.6]]])  # 4 locations, 2 tags
    boxes, kept, tags = suppress(corners, scores, max_detections=5)
    assert kept[0].tolist() == pytest.approx([0.9, 0.7, 0.6, 0.0, 0.0])  # the 0.8 duplicate is gone
    assert tags[0, :3].tolist() == [0, 0, 1]  # the same box under the other tag stays
    assert boxes[0, 0].tolist() == pytest.approx([0.1, 0.1, 0.4, 0.4])  # left, top, width, height
    assert boxes[0, 3:].abs().sum() == 0  # padding


def test_detection_metrics_by_hand() -> None:
    a = [Box("a", 0.0, 0.0, 0.5, 0.5)]
    images = [
        # a found (IoU 0.81) at 0.9, plus a false a at 0.6 elsewhere
        DetectedImage(0, a, [Box("a", 0.0, 0.0, 0.45, 0.45, 0.9), Box("a", 0.6, 0.6, 0.2, 0.2, 0.6)]),
        # a found only loosely (IoU 0.14 < 0.5) at 0.8: a false positive and a missed box
        DetectedImage(1, a, [Box("a", 0.25, 0.25, 0.5, 0.5, 0.8)]),
    ]
    performance = detection_performance(images, ["a"], threshold=0.5, overlap=0.5)
    assert performance.precision.value == pytest.approx(1 / 3)
    assert performance.recall.value == pytest.approx(1 / 2)
    # fold 0: precision 1/2, recall 1; fold 1: precision 0, recall 0
    assert performance.precision.std_deviation == pytest.approx(0.25)
    assert performance.recall.std_deviation == pytest.approx(0.5)
    # ranked 0.9 (hit), 0.8 (miss), 0.6 (miss); recall reaches 1/2 at precision 1
    assert detection_average_precision(images, "a", overlap=0.5) == pytest.approx(0.5)
    # a looser overlap threshold accepts the 0.8 box: both found, at precision 1 then 1
    loose = detection_performance(images, ["a"], threshold=0.5, overlap=0.1)
    assert loose.recall.value == 1.0 and loose.average_precision == pytest.approx(1.0)
    strict = detection_performance(images, ["a"], threshold=0.95, overlap=0.5)
    assert strict.recall.value == 0.0 and strict.average_precision == performance.average_precision
    # one true box found twice: the second match is a false positive
    twice = [DetectedImage(0, a, [Box("a", 0.0, 0.0, 0.5, 0.5, 0.9), Box("a", 0.0, 0.0, 0.5, 0.49, 0.8)])]
    assert detection_performance(twice, ["a"]).precision.value == pytest.approx(0.5)


def test_a_champion_on_every_image_detects_as_the_folds_do_and_one_on_none_finds_nothing() -> None:
    """The champion's per-fold heads (training_job/champion.py): trained on every sample of the other folds they
    are the cross-validation's own fold heads; with nothing it was trained on, a fold gets no detections."""
    few = samples(range(8))
    settings = DetectorSettings(image_size=192, augmented_views=1, epochs=5, max_folds=2)
    cache = build_cache(few, LABELS, Levels(load_backbone(BACKBONE)).eval(), settings)
    folds = np.array([0, 1] * 4)
    _, fold_heads = fit_heads(cache, LABELS, folds, settings, math.inf)
    found = fold_heads.held_out()
    assert fit_held_out(cache, LABELS, folds, np.ones(8, dtype=bool), settings, math.inf) == found
    only_fold_0 = folds == 0  # the champion saw fold 0 alone: fold 1's head learns it, fold 0's has nothing
    held_out = fit_held_out(cache, LABELS, folds, only_fold_0, settings, math.inf)
    assert all(not held_out[row] for row in np.flatnonzero(folds == 0))
    assert any(held_out[row] for row in np.flatnonzero(folds == 1))


# --- the hand-written pieces that stay, against torchvision.ops ---------------------------------------------------


def random_corners(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """[*shape, 4] corner boxes (x0, y0, x1, y1) inside the unit square, with an area."""
    start = torch.rand(*shape, 2, generator=generator) * 0.8
    size = torch.rand(*shape, 2, generator=generator) * 0.4 + 0.01
    return torch.cat([start, (start + size).clamp(max=1)], dim=-1)


def test_pairwise_iou_is_torchvisions_box_iou_and_has_no_nan_for_boxes_without_area() -> None:
    from torchvision.ops import box_iou

    from training_job.detector import pairwise_iou

    generator = torch.Generator().manual_seed(0)
    a, b = random_corners(generator, 3, 20), random_corners(generator, 3, 30)
    torch.testing.assert_close(pairwise_iou(a, b), box_iou(a, b))
    flat = torch.tensor([[[1.0, 0.2, 1.0, 0.5]]])  # clipped at the right edge: no width
    assert torch.isnan(box_iou(flat, flat)).all()
    assert (pairwise_iou(flat, flat) == 0).all()


def test_suppress_keeps_the_boxes_torchvisions_batched_nms_keeps() -> None:
    """Cluster-NMS with the model's rounds against greedy per-tag NMS, on images crowded with overlapping boxes of
    three tags: the same boxes survive, with the same scores and tags."""
    from torchvision.ops import batched_nms

    from pipeline.contract.detection import DETECTION

    generator = torch.Generator().manual_seed(1)
    images, locations, tags = 4, 60, 3
    corners = random_corners(generator, images, locations)
    scores = torch.rand(images, locations, tags, generator=generator) ** 3
    boxes, kept_scores, kept_tags = suppress(corners, scores)
    for n in range(images):
        flat = scores[n].flatten()
        candidates = flat.topk(min(DETECTION.candidates, flat.numel())).indices
        location, tag = candidates // tags, candidates % tags
        keep = batched_nms(corners[n][location], flat[candidates], tag, DETECTION.nms_iou)
        keep = keep[flat[candidates][keep] >= DETECTION.min_score][: DETECTION.max_detections]
        present = kept_scores[n] > 0
        expected = corners[n][location[keep]]
        expected = torch.cat([expected[:, :2], expected[:, 2:] - expected[:, :2]], dim=1)
        torch.testing.assert_close(kept_scores[n][present], flat[candidates][keep])
        torch.testing.assert_close(boxes[n][present], expected)
        assert torch.equal(kept_tags[n][present], tag[keep])


@pytest.mark.slow
def test_advanced_tunes_the_stride_32_blocks_and_exports_them(training: list[DetectionSample]) -> None:
    """Advanced detection fine-tunes a copy of the backbone's stride-32 blocks before the heads (issue 16, item
    3): the exported model runs the tuned blocks, not the pretrained ones, and passes the same export check."""
    settings = DetectorSettings(image_size=192, augmented_views=1, epochs=4, max_folds=2)
    result = train_detector(
        training[:12], LABELS, backbone=BACKBONE, settings=settings, training_type="Advanced"
    )
    assert result.export_difference <= export.DETECTION_TOLERANCE
    assert "backbone_tuning" in result.timings
    metadata = {entry.key: entry.value for entry in onnx.load_from_string(result.onnx_model).metadata_props}
    assert result.model.nms_iou in ADVANCED_NMS_IOUS
    assert json.loads(metadata[MetadataKey.NMS_IOU]) == result.model.nms_iou
    pretrained = coarse_blocks(Levels(load_backbone(BACKBONE)))
    tuned = coarse_blocks(result.model.levels)
    moved = max(
        (a - b).abs().max().item() for a, b in zip(tuned.parameters(), pretrained.parameters(), strict=True)
    )
    assert moved > 1e-4
    frozen_part = result.model.levels.backbone.network._blocks[: result.model.levels.splits[-1]]
    original = load_backbone(BACKBONE).network._blocks[: result.model.levels.splits[-1]]
    assert all(
        torch.equal(a, b) for a, b in zip(frozen_part.parameters(), original.parameters(), strict=True)
    )


def test_advanced_predicts_on_a_stride_8_grid_only_when_the_objects_are_small() -> None:
    """Issue 16, item 3: the median box's shorter side decides, in pixels at the training size (bound: 2.5
    stride-16 cells, 40 px)."""

    def boxes_of(side: float) -> list[DetectionSample]:
        image = Image.new("RGB", (64, 64))
        return [DetectionSample("s", image, (Box("t-red", 0.1, 0.1, side, 2 * side),) * 3)]

    assert advanced_finest_stride(boxes_of(0.1), 320) == 8  # 32 px
    assert advanced_finest_stride(boxes_of(0.1), 384) == 8  # 38 px
    assert advanced_finest_stride(boxes_of(0.15), 320) == 16  # 48 px
    assert advanced_finest_stride(boxes_of(0.5), 320) == 16


@pytest.mark.slow
def test_advanced_on_small_objects_tunes_predicts_on_the_stride_8_grid_and_exports(
    training: list[DetectionSample],
) -> None:
    """At 96 px the scenes' boxes are about 25 px, small: Advanced adds the backbone's stride-8 map, the head
    predicts on the 12 x 12 grid, and the exported model (tuned blocks, three levels) passes the export check and
    finds the boxes."""
    settings = DetectorSettings(image_size=96, augmented_views=1, epochs=4, max_folds=2)
    result = train_detector(
        training[:12], LABELS, backbone=BACKBONE, settings=settings, training_type="Advanced"
    )
    assert result.model.levels.strides == (8, 16, 32)
    pixels = torch.from_numpy(np.stack([preprocess_full(s.image, 96) for s in training[:2]]))
    with torch.inference_mode():
        logits, sides, _ = result.model.head(*result.model.levels(pixels))
    assert logits.shape == (2, len(LABELS), 12, 12) and sides.shape == (2, 4, 12, 12)
    assert result.export_difference <= export.DETECTION_TOLERANCE
    assert "backbone_tuning" in result.timings
    boxes, scores, _ = run_onnx(result, [s.image for s in training[:2]])
    assert boxes.shape == (2, 200, 4) and scores.max() > 0


def test_suppression_overlap_is_a_parameter_of_the_exported_graph() -> None:
    """Two boxes of one tag overlapping by 0.6: suppressed at an overlap of 0.5, both kept at 0.7 (Advanced
    chooses the overlap on the folds and the model carries it)."""
    corners = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.3], [0.6, 0.6, 0.9, 0.9]]])
    scores = torch.tensor([[[0.9], [0.8], [0.7]]])
    _, strict, _ = suppress(corners, scores, nms_iou=0.5)
    _, lenient, _ = suppress(corners, scores, nms_iou=0.7)
    assert (strict > 0).sum() == 2 and (lenient > 0).sum() == 3


class _RefoldedDetections:
    """What suppressed_on_folds reads of fold heads: each sample's held-out detections at an overlap (here: a duplicate
    of the true box above the threshold survives suppression from 0.5 up)."""

    folds = np.array([0, 1])

    def __init__(self, truth: list[Box], duplicates_from: float) -> None:
        self.truth, self.duplicates_from = truth, duplicates_from

    def held_out(self, nms_iou: float) -> list[list[Box]]:
        found = [[Box(b.tag_id, b.left, b.top, b.width, b.height, probability=0.9)] for b in self.truth]
        if nms_iou >= self.duplicates_from:
            for boxes, b in zip(found, self.truth, strict=True):
                boxes.append(Box(b.tag_id, b.left + 0.1, b.top, b.width, b.height, probability=0.8))
        return found


def test_the_suppression_overlap_is_chosen_by_what_users_see_above_the_threshold() -> None:
    """Advanced keeps the overlap whose out-of-fold detections have the best F1 at 50 % (duplicates above the
    threshold are false positives), and the default overlap when the candidates tie."""
    truth = [Box("t-red", 0.1, 0.1, 0.4, 0.4), Box("t-red", 0.5, 0.5, 0.3, 0.3)]
    few = [DetectionSample(f"s{i}", Image.new("RGB", (8, 8)), (box,)) for i, box in enumerate(truth)]
    chosen, _ = suppressed_on_folds(few, LABELS, _RefoldedDetections(truth, 0.5), ADVANCED_NMS_IOUS)
    assert chosen < 0.5
    assert suppressed_on_folds(few, LABELS, _RefoldedDetections(truth, 2.0), ADVANCED_NMS_IOUS)[0] == 0.5
    assert suppressed_on_folds(few, LABELS, _RefoldedDetections(truth, 0.5), ())[0] == 0.5


@pytest.mark.slow
def test_an_advanced_budget_spent_before_the_heads_still_trains_them(training: list[DetectionSample]) -> None:
    """An Advanced run whose budget ends before its heads start (here at once, so the backbone tuning stops at its
    first step) still gives every head Regular's epochs: a budget never leaves a detector untrained."""
    settings = DetectorSettings(image_size=192, augmented_views=1, epochs=4, max_folds=2)
    regular = train_detector(training[:12], LABELS, backbone=BACKBONE, settings=settings)
    advanced = train_detector(
        training[:12],
        LABELS,
        backbone=BACKBONE,
        settings=settings,
        training_type="Advanced",
        budget_seconds=0,
    )
    assert advanced.cv_score >= 0.5 * regular.cv_score > 0
