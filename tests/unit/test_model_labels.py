"""The labels an exported model carries: each output's tag id, name and type; models exported before the type
was recorded read as Regular."""

from __future__ import annotations

import json

from pipeline.contract.onnx_model import MetadataKey, ModelLabel, decode_labels, encode_labels, model_label
from pipeline.core.vocabulary import TagType
from pipeline.store.records import TagRecord


def test_labels_round_trip_with_their_tag_type() -> None:
    labels = [ModelLabel("a", "cat"), ModelLabel("b", "none", TagType.NEGATIVE)]
    encoded = encode_labels(labels)
    assert json.loads(encoded)[1] == {"tag_id": "b", "name": "none", "type": "Negative"}
    assert decode_labels({MetadataKey.LABELS: encoded}) == labels


def test_labels_without_a_type_are_regular() -> None:
    old = json.dumps([{"tag_id": "a", "name": "cat"}])
    assert decode_labels({MetadataKey.LABELS: old}) == [ModelLabel("a", "cat", TagType.REGULAR)]


def test_a_tag_becomes_its_label() -> None:
    tag = TagRecord(id="t", project_id="p", name="shelf", type=TagType.GENERAL_PRODUCT)
    assert model_label(tag) == ModelLabel("t", "shelf", TagType.GENERAL_PRODUCT)
