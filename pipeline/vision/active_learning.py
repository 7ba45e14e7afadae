"""Which untagged images to label first: the ones whose labels would teach the model most.

Two things make an image worth labelling: the model is unsure about it (a small margin between its two most
probable tags), and it is unlike the images already chosen (so the top of the list is not ten near-duplicates of
one hard case). The order is greedy: each next image maximises uncertainty times its cosine distance, in the
model's feature space, to the nearest image already chosen. Pure numpy, shared by the service (QuerySuggestedImages'
`labelFirst` order) and bench/active_learning.py, so the benchmark measures exactly what users get."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

EMBEDDING_DTYPE = np.float16  # half the bytes of float32; cosine distances move by about 1e-3


def margin_uncertainty(probabilities: Sequence[float]) -> float:
    """1 minus the margin between the two most probable tags: 1 for a tie, 0 for a sure answer. With one tag the
    margin is that tag's distance from 0.5 (sigmoid), doubled."""
    ranked = sorted((float(p) for p in probabilities), reverse=True)
    if not ranked:
        return 1.0
    if len(ranked) == 1:
        return 1.0 - abs(2.0 * ranked[0] - 1.0)
    return 1.0 - (ranked[0] - ranked[1])


def normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), so a dot product is a cosine similarity."""
    rows = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def encode_embedding(features: np.ndarray) -> str:
    """One image's features as stored with its suggestion: unit length, float16, base64."""
    return base64.b64encode(normalised(features[np.newaxis])[0].astype(EMBEDDING_DTYPE).tobytes()).decode()


def decode_embedding(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=EMBEDDING_DTYPE).astype(np.float32)


def label_first_order(
    uncertainties: Sequence[float], embeddings: np.ndarray | None, count: int | None = None
) -> list[int]:
    """Indexes of the first `count` images (all when None) in the order to label them.

    `embeddings`: [N, D] unit-length features, or None when the model has none to offer (a detector): then the
    order is by uncertainty alone. Ties keep the given order, so the result is deterministic."""
    scores = np.asarray(uncertainties, dtype=np.float64)
    total = len(scores) if count is None else min(count, len(scores))
    if embeddings is None:
        return [int(i) for i in np.argsort(-scores, kind="stable")[:total]]
    vectors = np.asarray(embeddings, dtype=np.float32)
    distance = np.ones(len(scores))  # to the nearest chosen image; nothing chosen yet: all equally far
    chosen = np.zeros(len(scores), dtype=bool)
    order: list[int] = []
    for _ in range(total):
        value = np.where(chosen, -np.inf, scores * distance)
        pick = int(np.argmax(value))
        order.append(pick)
        chosen[pick] = True
        cosine_distance = np.clip(1.0 - vectors @ vectors[pick], 0.0, 2.0)
        distance = np.minimum(distance, cosine_distance)
    return order
