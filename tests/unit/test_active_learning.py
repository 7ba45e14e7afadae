"""The "label these first" order (pipeline.vision.active_learning): uncertain images first, but not a run of
near-duplicates of one hard case."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.vision.active_learning import (
    decode_embedding,
    encode_embedding,
    label_first_order,
    margin_uncertainty,
    normalised,
)


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [
        ((0.5, 0.5), 1.0),
        ((0.9, 0.1), 0.2),
        ((0.6, 0.3, 0.1), 0.7),  # the margin between the two most probable, wherever they are
        ((0.1, 0.3, 0.6), 0.7),
        ((0.5,), 1.0),  # one sigmoid tag: unsure at 0.5
        ((0.95,), 0.1),
        ((), 1.0),
    ],
)
def test_margin_uncertainty(probabilities, expected):
    assert margin_uncertainty(probabilities) == pytest.approx(expected)


def test_near_duplicates_of_the_most_uncertain_image_give_way_to_an_unlike_one():
    features = normalised(
        np.array(
            [
                [1.0, 0.0, 0.0],  # 0: the most uncertain
                [1.0, 0.01, 0.0],  # 1: almost the same picture, almost as uncertain
                [0.99, 0.0, 0.01],  # 2: likewise
                [0.0, 1.0, 0.0],  # 3: something else, a little less uncertain
                [0.0, 0.0, 1.0],  # 4: something else again, fairly sure
            ]
        )
    )
    uncertainties = [0.95, 0.94, 0.93, 0.8, 0.3]
    assert label_first_order(uncertainties, features)[:3] == [0, 3, 4]
    assert sorted(label_first_order(uncertainties, features)) == [0, 1, 2, 3, 4]
    assert label_first_order(uncertainties, None) == [0, 1, 2, 3, 4]  # no features: uncertainty alone
    assert label_first_order(uncertainties, features, 2) == [0, 3]
    assert label_first_order([], None, 5) == []


def test_the_order_is_deterministic_on_ties():
    features = normalised(np.eye(4))
    assert label_first_order([0.5] * 4, features) == [0, 1, 2, 3]
    assert label_first_order([0.5] * 4, None) == [0, 1, 2, 3]


def test_embeddings_are_stored_at_unit_length_in_half_precision():
    features = np.array([3.0, 4.0, 0.0], dtype=np.float32)
    decoded = decode_embedding(encode_embedding(features))
    assert decoded == pytest.approx([0.6, 0.8, 0.0], abs=1e-3)
    assert len(encode_embedding(np.zeros(1280, dtype=np.float32))) < 4000  # fits a table property
