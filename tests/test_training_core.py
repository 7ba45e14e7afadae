"""The training core on small synthetic pictures (no ../shared, no Azurite): multiclass and multilabel training,
out-of-fold predictions, the ONNX contract and its check against torch, Advanced never worse than Regular on
the folds, and bad input refused. efficientnet-lite0 keeps it quick."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image, ImageDraw

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import TagType
from pipeline.vision.metrics import ranked_average_precision
from pipeline.vision.preprocessing import PREPROCESSING, preprocess, preprocess_batch
from training_job import onnx_export as export
from training_job.augment import views
from training_job.common import TrainingInputError, stratified_folds
from training_job.samples import Sample
from training_job.train import Recipe, TrainingResult, train_classifier

BACKBONE = "efficientnet-lite0"
SIZE = 224
COLOURS = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 60, 200)}


def picture(colour: tuple[int, int, int], seed: int, circle: bool = False) -> Image.Image:
    """A noisy coloured picture with a dark square somewhere; optionally a big yellow circle."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (256, 320, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    x, y = rng.integers(20, 220), rng.integers(20, 150)
    draw.rectangle([x, y, x + 50, y + 50], fill=(20, 20, 20))
    if circle:
        draw.ellipse([90, 60, 230, 200], fill=(250, 230, 30))
    return image


def onnx_probabilities(result: TrainingResult, images: list[Image.Image]) -> np.ndarray:
    session = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    return session.run(["model_outputs"], {"data": preprocess_batch(images, result.image_size)})[0]


@pytest.fixture(scope="module")
def multiclass() -> tuple[list[Sample], list[ModelLabel]]:
    """Three colours, the last one a Negative tag, with unequal counts (6, 6, 4) so k = 4."""
    labels = [
        ModelLabel("t-red", "red"),
        ModelLabel("t-green", "green"),
        ModelLabel("t-blue", "blue", TagType.NEGATIVE),
    ]
    counts = {"red": 6, "green": 6, "blue": 4}
    samples = [
        Sample(f"{name}-{i}", picture(COLOURS[name], seed=100 * index + i), {index})
        for index, name in enumerate(COLOURS)
        for i in range(counts[name])
    ]
    return samples, labels


@pytest.fixture(scope="module")
def regular(multiclass: tuple[list[Sample], list[ModelLabel]]) -> TrainingResult:
    samples, labels = multiclass
    return train_classifier(samples, labels, multilabel=False, backbone=BACKBONE, training_type="Regular")


@pytest.mark.slow
def test_multiclass_onnx_classifies_unseen_pictures(regular: TrainingResult) -> None:
    names = list(COLOURS)
    unseen = [
        (picture(COLOURS[name], seed=9000 + 7 * i), j) for j, name in enumerate(names) for i in range(3)
    ]
    probabilities = onnx_probabilities(regular, [image for image, _ in unseen])
    assert probabilities.shape == (len(unseen), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert list(probabilities.argmax(axis=1)) == [j for _, j in unseen]
    assert regular.mode == "Regular" and regular.backbone == BACKBONE and regular.image_size == SIZE


@pytest.mark.slow
def test_a_backbone_made_ahead_is_taken_once_and_trains_the_same_model(
    multiclass: tuple[list[Sample], list[ModelLabel]], regular: TrainingResult
) -> None:
    """What a standby execution prepares (`prepare_backbones`) is what a run would have made itself."""
    samples, labels = multiclass
    export.prepare_backbones([BACKBONE])
    assert BACKBONE in export._prepared
    ahead = train_classifier(samples, labels, multilabel=False, backbone=BACKBONE, training_type="Regular")
    assert BACKBONE not in export._prepared  # taken by that run; the next one makes its own
    assert ahead.onnx_model == regular.onnx_model
    export.prepare_backbones([BACKBONE])
    export.discard_prepared_backbones()  # what a detector's run does with them
    assert not export._prepared


@pytest.mark.slow
def test_onnx_matches_torch_and_carries_metadata(
    regular: TrainingResult, multiclass: tuple[list[Sample], list[ModelLabel]]
) -> None:
    samples, labels = multiclass
    images = [sample.image for sample in samples[::3]]
    with torch.inference_mode():
        expected = regular.model(torch.from_numpy(preprocess_batch(images, SIZE))).numpy()
    assert np.abs(onnx_probabilities(regular, images) - expected).max() <= 1e-4
    assert regular.export_difference <= 1e-4 and regular.device == "cpu"

    session = ort.InferenceSession(regular.onnx_model, providers=["CPUExecutionProvider"])
    [data] = session.get_inputs()
    output, unknown = session.get_outputs()
    assert (data.name, data.shape[1:], output.name) == ("data", [3, SIZE, SIZE], "model_outputs")
    assert (unknown.name, len(unknown.shape)) == ("unknown_score", 1)
    assert not isinstance(data.shape[0], int)  # dynamic batch
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["labels"]) == [
        {"tag_id": label.tag_id, "name": label.name, "type": label.type} for label in labels
    ]
    assert json.loads(metadata["preprocessing"]) == {**PREPROCESSING, "size": SIZE}
    assert metadata["classification_type"] == "Multiclass"
    assert metadata["backbone"] == BACKBONE
    assert float(metadata["unknown_threshold"]) == regular.unknown.threshold
    assert float(metadata["temperature"]) == regular.calibration.temperature


@pytest.mark.slow
def test_unknown_score_flags_pictures_unlike_the_training_set(
    regular: TrainingResult, multiclass: tuple[list[Sample], list[ModelLabel]]
) -> None:
    """The served model's second output is the training job's kNN score of its own features, and noise and
    plain pictures score above the iteration's threshold while new pictures like the training ones do not."""
    rng = np.random.default_rng(7)
    noise = [Image.fromarray(rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)) for _ in range(3)]
    noise += [Image.new("RGB", (300, 300), (128, 128, 128)), Image.new("RGB", (300, 300), (250, 250, 250))]
    known = [picture(COLOURS[name], seed=7000 + i) for name in ("red", "green") for i in range(3)]
    session = ort.InferenceSession(regular.onnx_model, providers=["CPUExecutionProvider"])
    pixels = preprocess_batch(noise + known, SIZE)
    probabilities, scores = session.run(["model_outputs", "unknown_score"], {"data": pixels})
    with torch.inference_mode():
        features = regular.model.features(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(scores, regular.unknown.scores(features), atol=1e-4)
    threshold = regular.unknown.threshold
    assert (scores[: len(noise)] > threshold).all(), (scores, threshold)
    assert (scores[len(noise) :] <= threshold).all(), (scores, threshold)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)  # the spec's output is unchanged


@pytest.mark.slow
def test_calibration_keeps_every_ranking(regular: TrainingResult) -> None:
    """The temperature is fitted out of fold and folded into the head: the out-of-fold predictions the
    iteration reports are the calibrated ones, with the same top tag as before."""
    calibration = regular.calibration
    assert (
        calibration.temperature > 0 and 0 <= calibration.ece_after <= 1 and 0 <= calibration.ece_before <= 1
    )
    reported = np.array([list(p.probabilities.values()) for p in regular.fold_predictions])
    np.testing.assert_allclose(reported, calibration.oof, atol=1e-6)
    assert regular.cv_score == pytest.approx(1.0)  # average precision is a ranking: unchanged


@pytest.mark.slow
def test_export_check_refuses_a_model_that_differs(
    regular: TrainingResult, multiclass: tuple[list[Sample], list[ModelLabel]]
) -> None:
    samples, _ = multiclass
    pixels = preprocess_batch([samples[0].image, samples[-1].image], SIZE)
    assert export.verify(regular.onnx_model, regular.model, pixels) <= 1e-4
    with torch.no_grad():
        regular.model.head.bias += 0.5 * torch.tensor([1.0, -1.0, 0.0])
    try:
        with pytest.raises(export.ExportVerificationError):
            export.verify(regular.onnx_model, regular.model, pixels)
    finally:
        with torch.no_grad():
            regular.model.head.bias -= 0.5 * torch.tensor([1.0, -1.0, 0.0])


@pytest.mark.slow
def test_every_image_gets_one_out_of_fold_prediction(
    regular: TrainingResult, multiclass: tuple[list[Sample], list[ModelLabel]]
) -> None:
    samples, labels = multiclass
    predictions = list(regular.fold_predictions)
    assert sorted(p.image_id for p in predictions) == sorted(s.image_id for s in samples)
    assert regular.folds == 4  # min(5, smallest tag count 4)
    assert {p.fold for p in predictions} == set(range(4))
    for prediction in predictions:
        assert set(prediction.probabilities) == {label.tag_id for label in labels}
        assert sum(prediction.probabilities.values()) == pytest.approx(1, abs=1e-5)
    # the Negative tag is an ordinary class: its pictures are recognised out of fold too
    by_id = {p.image_id: p for p in predictions}
    for sample in samples:
        truth = labels[next(iter(sample.labels))].tag_id
        assert max(by_id[sample.image_id].probabilities.items(), key=lambda kv: kv[1])[0] == truth
    assert regular.cv_score == pytest.approx(1.0)


@pytest.mark.slow
def test_multilabel_gives_every_tag_of_an_image() -> None:
    labels = [ModelLabel("r", "red"), ModelLabel("b", "blue"), ModelLabel("c", "circle")]
    samples = [
        Sample(
            f"{colour}-{circle}-{i}",
            picture(COLOURS[colour], seed=500 + 10 * i + circle, circle=circle),
            {index, 2} if circle else {index},
        )
        for index, colour in enumerate(["red", "blue"])
        for circle in (False, True)
        for i in range(4)
    ]
    result = train_classifier(samples, labels, multilabel=True, backbone=BACKBONE)
    probabilities = onnx_probabilities(result, [sample.image for sample in samples])
    truth = np.array([[j in sample.labels for j in range(3)] for sample in samples])
    assert (probabilities[truth] > 0.5).all(), probabilities
    assert (probabilities[~truth] < 0.5).all(), probabilities
    assert (
        json.loads(
            ort.InferenceSession(result.onnx_model).get_modelmeta().custom_metadata_map["preprocessing"]
        )["size"]
        == SIZE
    )
    assert len(result.fold_predictions) == len(samples)
    assert all(len(p.probabilities) == 3 for p in result.fold_predictions)


@pytest.mark.slow
def test_advanced_is_never_worse_than_regular_on_the_folds(
    regular: TrainingResult, multiclass: tuple[list[Sample], list[ModelLabel]]
) -> None:
    samples, labels = multiclass
    result = train_classifier(
        samples, labels, multilabel=False, backbone=BACKBONE, training_type="Advanced", budget_seconds=20
    )
    # both Advanced recipes really ran and were scored
    assert set(result.scores) == {Recipe.REGULAR, Recipe.SEMANTIC, Recipe.FINE_TUNED}
    assert result.scores[Recipe.REGULAR] == regular.scores[Recipe.REGULAR]  # the same folds and features
    assert result.mode == ("Regular" if result.recipe == Recipe.REGULAR else "Advanced")
    kept = result.scores[result.recipe]
    assert kept.key() >= max(result.scores[linear].key() for linear in (Recipe.REGULAR, Recipe.SEMANTIC))
    assert result.cv_score >= regular.cv_score
    assert [p.fold for p in result.fold_predictions] == [p.fold for p in regular.fold_predictions]
    assert export.verify(result.onnx_model, result.model, preprocess_batch([samples[0].image], SIZE)) <= 1e-4


@pytest.mark.parametrize(
    ("samples", "labels", "multilabel", "options", "message"),
    [
        ([], [ModelLabel("a", "a")], False, {}, "at least 2"),
        (
            [Sample("1", picture((1, 2, 3), 0), {0})] * 2,
            [ModelLabel("a", "a"), ModelLabel("b", "b")],
            False,
            {},
            "b",
        ),
        (
            [Sample("1", picture((1, 2, 3), 0), {0, 1})] * 2,
            [ModelLabel("a", "a"), ModelLabel("b", "b")],
            False,
            {},
            "needs 1",
        ),
        ([Sample("1", picture((1, 2, 3), 0), set())] * 2, [ModelLabel("a", "a")], True, {}, "no tag"),
        ([Sample("1", picture((1, 2, 3), 0), {3})] * 2, [ModelLabel("a", "a")], True, {}, "out of range"),
        (
            [Sample("1", picture((1, 2, 3), 0), {0})] * 2,
            [ModelLabel("a", "a")],
            False,
            {"backbone": "vgg"},
            "vgg",
        ),
        (
            [Sample("1", picture((1, 2, 3), 0), {0})] * 2,
            [ModelLabel("a", "a")],
            False,
            {"training_type": "X"},
            "X",
        ),
    ],
)
def test_unusable_input_is_refused(
    samples: list[Sample], labels: list[ModelLabel], multilabel: bool, options: dict[str, str], message: str
) -> None:
    with pytest.raises(TrainingInputError, match=message):
        train_classifier(samples, labels, multilabel=multilabel, **options)


def test_folds_are_stratified_and_balanced() -> None:
    label_sets = [{0}] * 10 + [{1}] * 7 + [{2}] * 3
    folds = stratified_folds(label_sets, 3)
    assert folds.max() + 1 == 3  # smallest tag count
    assert sorted(Counter(folds).values()) == [6, 7, 7]
    for label in range(3):
        members = folds[[i for i, s in enumerate(label_sets) if label in s]]
        counts = Counter(members)
        assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == 3
    assert stratified_folds([{0}, {1}], 2).tolist() in ([0, 1], [1, 0])  # k is at least 2
    assert stratified_folds([{0}] * 40, 1).max() + 1 == 5  # and at most 5


def test_average_precision() -> None:
    assert ranked_average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0])) == 1.0
    assert ranked_average_precision(np.array([0.9, 0.8, 0.1]), np.array([0, 1, 1])) == pytest.approx(
        (1 / 2 + 2 / 3) / 2
    )


def test_preprocess_resizes_the_shortest_side_and_takes_the_centre() -> None:
    image = Image.new("RGB", (300, 100), (0, 0, 255))
    ImageDraw.Draw(image).rectangle([100, 0, 199, 99], fill=(255, 0, 0))  # the middle third is red
    pixels = preprocess(image, 50)
    assert pixels.shape == (3, 50, 50) and pixels.dtype == np.float32
    inner = pixels[:, :, 2:-2]  # the outermost columns blend with the sides (bilinear resize, then crop)
    assert inner[0].min() > 250 and inner[2].max() < 5  # all red: the centre square, nothing of the sides
    assert pixels[2].mean() < 20
    grey = preprocess(Image.new("L", (60, 90), 128), 32)
    assert grey.shape == (3, 32, 32) and np.all(grey == 128)  # converted to RGB, values 0..255 kept
    assert preprocess_batch([image, image], 50).shape == (2, 3, 50, 50)


def test_preprocessing_does_not_import_torch() -> None:
    code = "import sys, pipeline.vision.preprocessing; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_augmented_views_are_model_sized_and_reproducible() -> None:
    image = picture(COLOURS["red"], seed=1)
    first = views(image, 64, 3, random.Random(5))
    again = views(image, 64, 3, random.Random(5))
    assert [view.size for view in first] == [(64, 64)] * 4
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again, strict=True))
    assert np.array_equal(
        preprocess(first[0], 64), preprocess(image, 64)
    )  # the first view is the serving view
    assert not np.array_equal(np.asarray(first[1]), np.asarray(first[2]))
