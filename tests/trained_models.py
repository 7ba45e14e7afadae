"""Small real models for the export tests: a classifier and a detector trained here on synthetic pictures (a few
seconds each on CPU), as the ONNX bytes the training job stores, plus pictures to run them on. Cached per process."""

from __future__ import annotations

import functools

import numpy as np
from onnx import TensorProto, helper
from PIL import Image, ImageDraw

from pipeline.contract.onnx_model import (
    CLASSIFIER_OUTPUT,
    INPUT,
    MetadataKey,
    ModelLabel,
    decode_labels,
    encode_labels,
)
from pipeline.core.boxes import Box
from tests.images import detection_scene

BACKBONE = "efficientnet-lite0"
COLOURS = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 60, 200)}
DETECTION_LABELS = [ModelLabel("t-red", "red"), ModelLabel("t-blue", "blue")]


def picture(colour: tuple[int, int, int], seed: int) -> Image.Image:
    """A noisy coloured picture with a dark square somewhere."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (256, 320, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    x, y = rng.integers(20, 220), rng.integers(20, 150)
    ImageDraw.Draw(image).rectangle([x, y, x + 50, y + 50], fill=(20, 20, 20))
    return image


def classifier_pictures(per_colour: int = 5, first_seed: int = 0) -> list[tuple[Image.Image, int]]:
    """(picture, colour index) pairs, `per_colour` of each colour."""
    return [
        (picture(colour, first_seed + 100 * index + i), index)
        for index, colour in enumerate(COLOURS.values())
        for i in range(per_colour)
    ]


@functools.cache
def classifier_onnx() -> bytes:
    """A Multiclass efficientnet-lite0 classifier of three colours (Regular training)."""
    from training_job.samples import Sample
    from training_job.train import train_classifier

    labels = [ModelLabel(f"t-{name}", name) for name in COLOURS]
    samples = [Sample(f"s-{n}", image, {index}) for n, (image, index) in enumerate(classifier_pictures())]
    result = train_classifier(samples, labels, multilabel=False, backbone=BACKBONE, training_type="Regular")
    return result.onnx_model


def detection_pictures(seeds: range) -> list[tuple[Image.Image, tuple[Box, ...]]]:
    """Scenes with red and blue boxes, and their boxes normalised to the image."""
    scenes = []
    for seed in seeds:
        image, boxes = detection_scene(seed)
        width, height = image.size
        scenes.append(
            (
                image,
                tuple(
                    Box(DETECTION_LABELS[tag].tag_id, x / width, y / height, w / width, h / height)
                    for tag, x, y, w, h in boxes
                ),
            )
        )
    return scenes


@functools.cache
def detector_onnx() -> bytes:
    """A two-tag efficientnet-lite0 detector, trained briefly at 192 px."""
    from training_job.detect import train_detector
    from training_job.detection_cache import DetectionSample, DetectorSettings

    settings = DetectorSettings(image_size=192, augmented_views=2, epochs=15, max_folds=2)
    samples = [
        DetectionSample(f"scene-{n}", image, boxes)
        for n, (image, boxes) in enumerate(detection_pictures(range(16)))
    ]
    return train_detector(samples, DETECTION_LABELS, backbone=BACKBONE, settings=settings).onnx_model


def relabelled(model: bytes, tag_ids: dict[str, str]) -> bytes:
    """`model` with each label's tag id replaced by `tag_ids[its name]`: a test project's own tags, so that what
    the model predicts can be accepted into that project."""
    import onnx

    proto = onnx.load_from_string(model)
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    labels = [ModelLabel(tag_ids[label.name], label.name, label.type) for label in decode_labels(metadata)]
    metadata[MetadataKey.LABELS] = encode_labels(labels)
    del proto.metadata_props[:]
    helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


def unconvertible_onnx() -> bytes:
    """A model no converter can read: its only node is an operator of a domain nobody implements."""
    node = helper.make_node("Mystery", [INPUT], [CLASSIFIER_OUTPUT], domain="com.example.unknown")
    graph = helper.make_graph(
        [node],
        "mystery",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(CLASSIFIER_OUTPUT, TensorProto.FLOAT, [1, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.unknown", 1)]
    )
    helper.set_model_props(model, {MetadataKey.LABELS: encode_labels([ModelLabel("t-only", "only")])})
    return model.SerializeToString()
