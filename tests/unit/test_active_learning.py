"""The "label these first" order (pipeline.vision.active_learning): uncertain images first, but not a run of
near-duplicates of one hard case."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.vision.active_learning import (
    decode_embedding,
    encode_embedding,
    label_first_order,
    normalised,
    typicality,
)


def _pictures() -> np.ndarray:
    """Two groups of three near-identical pictures (typical: each has close neighbours) and an odd one out."""
    return normalised(
        np.array(
            [
                [1.0, 0.0, 0.0],  # 0-2: group A
                [1.0, 0.01, 0.0],
                [0.99, 0.0, 0.01],
                [0.0, 1.0, 0.0],  # 3-5: group B
                [0.01, 1.0, 0.0],
                [0.0, 0.99, 0.01],
                [0.0, 0.0, 1.0],  # 6: unlike anything
            ]
        )
    )


def test_typical_pictures_first_and_never_two_of_a_group_in_a_row():
    uncertainties = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9]
    order = label_first_order(_pictures(), uncertainties)
    assert {order[0] // 3, order[1] // 3} == {0, 1}  # one of each group; the odd one out teaches least
    assert sorted(order) == list(range(7))
    assert label_first_order(_pictures(), uncertainties, 2) == order[:2]


def test_without_features_the_order_is_by_uncertainty():
    assert label_first_order(None, [0.2, 0.9, 0.5]) == [1, 2, 0]
    assert label_first_order(None, [0.5, 0.5, 0.5], 2) == [0, 1]  # ties keep the given order
    assert label_first_order(None, [], 5) == []


def test_typicality_of_each_picture():
    typical = typicality(_pictures(), neighbours=2)
    assert typical[:6] == pytest.approx([1.0] * 6, abs=1e-3) and typical[6] < 0.02
    # compared with every third picture only (0, 3 and 6): picture 1's nearest two are 0 (alike) and 3 (not)
    assert typicality(_pictures(), neighbours=2, references=3)[1] == pytest.approx(0.5, abs=0.01)


def test_embeddings_are_stored_at_unit_length_in_half_precision():
    features = np.array([3.0, 4.0, 0.0], dtype=np.float32)
    decoded = decode_embedding(encode_embedding(features))
    assert decoded == pytest.approx([0.6, 0.8, 0.0], abs=1e-3)
    assert len(encode_embedding(np.zeros(1280, dtype=np.float32))) < 4000  # fits a table property
