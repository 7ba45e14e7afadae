"""The exported ONNX model as the training job writes it and the service reads it: tensor names and the keys
of its metadata. Exported models leave Seer, so these names are a promise to offline users too."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pipeline.core.vocabulary import TagType
from pipeline.store.records import TagRecord

INPUT = "data"  # float32 [N, 3, S, S], RGB, 0..255 (see pipeline.vision.preprocessing)
CLASSIFIER_OUTPUT = "model_outputs"  # float32 [N, tags]: softmax (Multiclass) or sigmoid (Multilabel)
# float32 [N, D]: a classifier's pooled backbone features. The training job's feature model outputs it; in the
# served model it is an inner tensor that labelling help (pipeline.vision.embedding) exposes for itself.
FEATURES = "features"
# A classifier's second output (models trained before it have none): float32 [N], how unlike the training images
# the image is (1 - cosine similarity of its pooled features to the k-th nearest training image's); above the
# metadata's UNKNOWN_THRESHOLD it is "unknown", none of the tags.
UNKNOWN_OUTPUT = "unknown_score"
# The detector decodes and suppresses inside the graph: [N, 200, 4] normalised left, top, width, height;
# [N, 200] scores by falling value (0 pads); [N, 200] tag indexes into the labels.
DETECTED_BOXES = "detected_boxes"
DETECTED_SCORES = "detected_scores"
DETECTED_CLASSES = "detected_classes"
DETECTOR_OUTPUTS = (DETECTED_BOXES, DETECTED_SCORES, DETECTED_CLASSES)


class MetadataKey(StrEnum):
    LABELS = "labels"  # JSON list of {"tag_id", "name", "type"} in output order
    PREPROCESSING = "preprocessing"  # JSON: how to turn an image into the input
    CLASSIFICATION_TYPE = "classification_type"  # Multiclass, Multilabel, or "null" for a detector
    DOMAIN_TYPE = "domain_type"
    BACKBONE = "backbone"
    OUTPUTS = "outputs"  # JSON list of the output names
    TEMPERATURE = "temperature"  # the calibration temperature already folded into the head (informational)
    UNKNOWN_THRESHOLD = "unknown_threshold"  # UNKNOWN_OUTPUT above this: none of the tags
    NMS_IOU = "nms_iou"  # a detector's suppression overlap in the graph (informational; Advanced's is tuned)


@dataclass(frozen=True)
class ModelLabel:
    """One output of the model: the tag it scores, as it was when the model was trained (predictions report
    its type without a look-up on the serving path)."""

    tag_id: str
    name: str
    type: TagType = TagType.REGULAR


def model_label(tag: TagRecord) -> ModelLabel:
    return ModelLabel(tag_id=tag.id, name=tag.name, type=tag.type)


def encode_labels(labels: Sequence[ModelLabel]) -> str:
    return json.dumps([{"tag_id": label.tag_id, "name": label.name, "type": label.type} for label in labels])


def decode_labels(metadata: Mapping[str, str]) -> list[ModelLabel]:
    """The model's labels; models exported before the type was recorded have no "type": Regular."""
    return [
        ModelLabel(tag_id=item["tag_id"], name=item["name"], type=TagType(item.get("type", TagType.REGULAR)))
        for item in json.loads(metadata[MetadataKey.LABELS])
    ]
