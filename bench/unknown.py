"""Calibration and the "unknown" score on real photos, calling the training core directly.

    .venv/bin/python -m bench.unknown

A Regular classifier (efficientnet-lite2) is trained on hymenoptera/train (ants, bees). Known images are
hymenoptera/val (153); unknown images are the Custom Vision quickstart's tree photos (Hemlock, Japanese Cherry and
its test image), its cutlery photos (fork, scissors and the detection test image) and synthetic noise made with a
fixed seed (uniform, gaussian and smooth colour gradients). Every figure comes from the exported model run in
ONNX Runtime on `pipeline.vision.preprocessing.preprocess`ed images, as serving runs it (a copy of the model also
outputs the pooled features, for the candidates the served model does not compute).

Printed: the temperature and the expected calibration error (ECE) before and after it, out of fold (what the
iteration records) and on val; AUROC of known against unknown for each candidate score, overall and per
unknown source; and the iteration's threshold: the share of known images it calls unknown and of unknown images
it catches. Skipped when the datasets are absent.
"""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from PIL import Image

from bench.classifier_accuracy import HYMENOPTERA, QUICKSTART, load_folder, stored_image
from bench.common import DATASETS, machine
from pipeline.contract.onnx_model import CLASSIFIER_OUTPUT, INPUT, UNKNOWN_OUTPUT
from pipeline.vision.metrics import auroc
from pipeline.vision.preprocessing import preprocess_batch
from training_job.calibration import expected_calibration_error, scaled
from training_job.onnx_export import FEATURES
from training_job.train import TrainingResult, train_classifier

CUTLERY = DATASETS / "customvision-samples" / "detection"
BACKBONE = "efficientnet-lite2"
NOISE_PER_KIND = 10
NOISE_SIZE = 320
SEED = 14


def noise_images() -> list[Image.Image]:
    """Uniform and gaussian pixel noise and smooth two-colour gradients, NOISE_PER_KIND of each."""
    rng = np.random.default_rng(SEED)
    shape = (NOISE_SIZE, NOISE_SIZE, 3)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(NOISE_PER_KIND)]
    images += [
        np.clip(rng.normal(rng.uniform(60, 200), rng.uniform(20, 60), shape), 0, 255).astype(np.uint8)
        for _ in range(NOISE_PER_KIND)
    ]
    ramp = np.linspace(0, 1, NOISE_SIZE)
    for _ in range(NOISE_PER_KIND):
        start, end, angle = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), rng.uniform(0, np.pi)
        t = (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]) / (
            abs(np.cos(angle)) + np.sin(angle)
        )
        images.append((start + (end - start) * t[..., None]).clip(0, 255).astype(np.uint8))
    return [Image.fromarray(pixels) for pixels in images]


def photos(root: os.PathLike, pattern: str = "*.jpg") -> list[Image.Image]:
    images = [stored_image(path) for path in sorted(root.rglob(pattern))]
    return [image for image in images if image is not None]


def with_features(model: bytes) -> ort.InferenceSession:
    """The served model with its pooled features as one more output."""
    proto = onnx.load_from_string(model)
    proto.graph.output.append(helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["batch", None]))
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(session: ort.InferenceSession, images: list[Image.Image], size: int) -> dict[str, np.ndarray]:
    names = [CLASSIFIER_OUTPUT, UNKNOWN_OUTPUT, FEATURES]
    parts = [
        session.run(names, {INPUT: preprocess_batch(images[i : i + 16], size)})
        for i in range(0, len(images), 16)
    ]
    return {name: np.concatenate([part[k] for part in parts]) for k, name in enumerate(names)}


class Candidates:
    """Scores that are higher for images less like the training images."""

    def __init__(self, result: TrainingResult, train: dict[str, np.ndarray], truth: np.ndarray) -> None:
        head = result.model.head
        self.weight, self.bias = head.weight.numpy(), head.bias.numpy()
        features = train[FEATURES]
        self.means = [features[truth == c].mean(axis=0) for c in np.unique(truth)]
        centred = np.concatenate([features[truth == c] - m for c, m in enumerate(self.means)])
        covariance = centred.T @ centred / len(centred)
        shrunk = 0.5 * covariance + 0.5 * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        self.precision = np.linalg.inv(shrunk)

    def scores(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        logits = outputs[FEATURES] @ self.weight.T + self.bias  # calibrated: the temperature is in the head
        top = logits.max(axis=1)
        energy = -(top + np.log(np.exp(logits - top[:, None]).sum(axis=1)))
        mahalanobis = np.min(
            [
                np.einsum("nd,de,ne->n", outputs[FEATURES] - m, self.precision, outputs[FEATURES] - m)
                for m in self.means
            ],
            axis=0,
        )
        return {
            "kNN cosine (served)": outputs[UNKNOWN_OUTPUT],
            "1 - max probability": 1 - outputs[CLASSIFIER_OUTPUT].max(axis=1),
            "energy": energy,
            "Mahalanobis (shrunk)": mahalanobis,
        }


def main() -> None:
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    if not HYMENOPTERA.is_dir() or not QUICKSTART.is_dir() or not CUTLERY.is_dir():
        print(f"SKIPPED: datasets not found under {DATASETS} (set SEER_DATASETS)")
        return
    started = time.perf_counter()
    samples, labels, _ = load_folder(HYMENOPTERA / "train", ["ants", "bees"])
    result = train_classifier(samples, labels, multilabel=False, backbone=BACKBONE, training_type="Regular")
    trained = time.perf_counter() - started
    val, _, _ = load_folder(HYMENOPTERA / "val", ["ants", "bees"])
    sources = {"trees": photos(QUICKSTART), "cutlery": photos(CUTLERY), "noise": noise_images()}
    session, size = with_features(result.onnx_model), result.image_size
    train_truth = np.array([next(iter(s.labels)) for s in samples])
    candidates = Candidates(result, run(session, [s.image for s in samples], size), train_truth)
    known = run(session, [s.image for s in val], size)
    unknown = {name: run(session, images, size) for name, images in sources.items()}

    calibration, threshold = result.calibration, result.unknown.threshold
    val_truth = np.eye(len(labels))[[next(iter(s.labels)) for s in val]]
    served = known[CLASSIFIER_OUTPUT]
    uncalibrated = scaled(np.log(np.clip(served, 1e-12, 1)), 1 / calibration.temperature, multilabel=False)
    accuracy = float((served.argmax(axis=1) == val_truth.argmax(axis=1)).mean())
    print(
        f"trained in {trained:.1f} s on {len(samples)} images ({result.timings}); val accuracy {accuracy:.1%}\n"
        f"temperature {calibration.temperature:.3f}; ECE out of fold {calibration.ece_before:.4f} -> "
        f"{calibration.ece_after:.4f}; ECE on val {expected_calibration_error(uncalibrated, val_truth, False):.4f}"
        f" -> {expected_calibration_error(served, val_truth, False):.4f}\n"
        f"known: val {len(val)}; unknown: "
        + ", ".join(f"{name} {len(images)}" for name, images in sources.items())
    )

    known_scores = candidates.scores(known)
    unknown_scores = {name: candidates.scores(outputs) for name, outputs in unknown.items()}
    print("\n| score | AUROC all | " + " | ".join(sources) + " |")
    print("|---|---:|" + "---:|" * len(sources))
    for candidate, negatives in known_scores.items():
        every = np.concatenate([scores[candidate] for scores in unknown_scores.values()])
        per_source = [auroc(negatives, scores[candidate]) for scores in unknown_scores.values()]
        print(
            f"| {candidate} | {auroc(negatives, every):.3f} | "
            + " | ".join(f"{a:.3f}" for a in per_source)
            + " |"
        )

    called = {name: float((outputs[UNKNOWN_OUTPUT] > threshold).mean()) for name, outputs in unknown.items()}
    every = np.concatenate([outputs[UNKNOWN_OUTPUT] for outputs in unknown.values()])
    print(
        f"\nthreshold {threshold:.4f} (training images above it out of fold: {result.unknown.known_above:.1%}): "
        f"val called unknown {float((known[UNKNOWN_OUTPUT] > threshold).mean()):.1%}; unknown caught "
        f"{float((every > threshold).mean()):.1%} ("
        + ", ".join(f"{name} {rate:.1%}" for name, rate in called.items())
        + f")\nwall time {time.perf_counter() - started:.0f} s; load average after {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
