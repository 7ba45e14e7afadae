"""Which untagged images to label first: the ones whose labels would teach the model most.

Measured on hymenoptera (bench/active_learning.py; 20 labelled images, then rounds of 20), with a linear head on
frozen features, what helps in the first rounds of labelling is covering the data, not chasing the model's doubts:
the images most like many others (typical: high mean cosine similarity to their nearest neighbours in the
model's feature space) and unlike the ones already chosen. Ranking by uncertainty (margin) with the same diversity
lost to random choice there; typicality with diversity beat it. So a classifier's order is greedy: each next image
maximises its typicality times its cosine distance to the nearest image already chosen (the top of the list is
never ten near-duplicates). A detector stores no features: its order is by uncertainty, the stored
predictionUncertainty. Pure numpy, shared by the service (QuerySuggestedImages' `labelFirst` order) and the
benchmark, so the benchmark measures exactly what users get."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

EMBEDDING_DTYPE = np.float16  # half the bytes of float32; cosine distances move by about 1e-3
NEIGHBOURS = 5  # typicality's neighbourhood: 5 beat 10 and 20 on hymenoptera (bench/active_learning.py)
MAX_REFERENCES = 1000


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


def typicality(
    embeddings: np.ndarray, neighbours: int = NEIGHBOURS, references: int = MAX_REFERENCES
) -> np.ndarray:
    """Each image's mean cosine similarity to its `neighbours` nearest others (clipped at 0), among at most
    `references` images spread evenly through the list (so thousands of suggestions cost seconds, not minutes)."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if len(vectors) < 2:
        return np.ones(len(vectors))
    step = max(1, -(-len(vectors) // references))
    reference_rows = np.arange(0, len(vectors), step)
    similarity = vectors @ vectors[reference_rows].T
    similarity[reference_rows, np.arange(len(reference_rows))] = -np.inf  # an image is not its own neighbour
    nearest = min(neighbours, len(reference_rows) - 1) or 1
    top = np.sort(similarity, axis=1)[:, -nearest:]
    return np.clip(np.where(np.isfinite(top), top, 0.0).mean(axis=1), 0.0, None)


def label_first_order(
    embeddings: np.ndarray | None, uncertainties: Sequence[float], count: int | None = None
) -> list[int]:
    """Indexes of the first `count` images (all when None) in the order to label them.

    `embeddings`: [N, D] unit-length features; None when the model has none to offer (a detector): then the
    order is by `uncertainties` alone. Ties keep the given order, so the result is deterministic."""
    total = len(uncertainties) if count is None else min(count, len(uncertainties))
    if embeddings is None:
        return [
            int(i) for i in np.argsort(-np.asarray(uncertainties, dtype=np.float64), kind="stable")[:total]
        ]
    vectors = np.asarray(embeddings, dtype=np.float32)
    worth = typicality(vectors).astype(np.float64)
    distance = np.ones(len(vectors))  # to the nearest chosen image; nothing chosen yet: all equally far
    chosen = np.zeros(len(vectors), dtype=bool)
    order: list[int] = []
    for _ in range(total):
        pick = int(np.argmax(np.where(chosen, -np.inf, worth * distance)))
        order.append(pick)
        chosen[pick] = True
        distance = np.minimum(distance, np.clip(1.0 - vectors @ vectors[pick], 0.0, 2.0))
    return order
