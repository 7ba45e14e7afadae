"""Issue 16, item 2's training runs through the training core alone, on the device training picks.

    python -m bench.training_core [--datasets DIR] [--only hymenoptera raccoon] [--training-type Regular Advanced]
                                  [--advanced-budget SECONDS]

What the training job runs once a standby execution has taken a message and loaded its images. The standby's
preparation comes first, outside the clock: the imports, the classifier's backbone exported ahead, and
detection's imports (only the backbone a run uses: a device call carries one backbone's weights). Then
`train_classifier` or `train_detector` runs on the clock as the job calls it, with the cross-validation, the
final model, the ONNX export and its check. `SEER_TRAINING_DEVICE` picks the device (`auto`: CUDA when torch sees
a GPU).

There is no service here. A GPU machine lent to this project reaches no registry and takes at most 64 MiB of
carried files: that holds one data set and the wheels its image lacks, but not Node and Azurite
(`scripts/device-bench.sh` stages them). `bench/train.py` and `bench/detect.py` time the same runs through the
whole service on the CPU. The gap between the two figures there is the service's part (dispatch, loading the
images, storing); the GPU does not change that part.
  - hymenoptera (General: EfficientNet-Lite2): train/ Regular, then Advanced (a 1-hour budget, as the service
    benches reserve), with the accuracy on val/ (153) of the exported model, run as serving runs it;
  - raccoon (General (compact): EfficientNet-Lite0): bench/detect.py's split (160 train, 40 held out), Regular and
    Advanced, with the held-out mAP@0.5, precision and recall at 0.5 of the exported model, run as serving runs it.
Images go through the same decoding and stored copy that uploads get, outside the clock. Skips with a message
when a data set is absent.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.classifier_accuracy import BACKBONE, load_folder, stored_upload, timed_training, val_accuracy
from bench.common import DATASETS, machine
from bench.detect import DOMAINS, Picture, photos, split
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.domains import domain_of
from pipeline.core.settings import get_settings
from pipeline.core.vocabulary import DomainType
from pipeline.services.prediction import model_predictions
from pipeline.vision.imaging import decode_image
from pipeline.vision.inference import LoadedModel
from pipeline.vision.metrics import DetectedImage, detection_performance
from training_job.detection_cache import DetectionSample
from training_job.device import TrainingDevice, select_device
from training_job.job import prepare_classifier_training, prepare_detector_training

RACCOON = ModelLabel(tag_id="raccoon", name="raccoon")


@dataclass(frozen=True)
class Row:
    dataset: str
    training_type: str
    device: str
    images: int
    seconds: float
    phases: dict[str, float]
    kept: str
    cv: float
    held_out: str


def hymenoptera(root: Path, training_type: str, budget: float | None, device: TrainingDevice) -> Row:
    samples, labels, _ = load_folder(root / "train", ["ants", "bees"])
    val, _, _ = load_folder(root / "val", ["ants", "bees"])
    result, seconds = timed_training(
        samples,
        labels,
        training_type=training_type,
        budget_seconds=budget,
        device=device,
    )
    accuracy = val_accuracy(result, val)
    return Row(
        "hymenoptera",
        training_type,
        result.device,
        len(samples),
        seconds,
        result.timings,
        str(result.recipe),
        result.cv_score,
        f"val accuracy {accuracy:.1%} ({round(accuracy * len(val))}/{len(val)})",
    )


def detection_sample(picture: Picture) -> DetectionSample:
    image = stored_upload(picture.content)
    if image is None:
        raise RuntimeError(f"{picture.name}: an upload of it would be refused")
    return DetectionSample(image_id=picture.name, image=image, regions=tuple(picture.boxes))


def held_out_detections(onnx_model: bytes, held_out: list[Picture]) -> list[DetectedImage]:
    """What the detect route answers for each held-out photo: its upload decoded, then the exported model."""
    model, settings = LoadedModel(onnx_model), get_settings()
    detected = []
    for picture in held_out:
        image = decode_image(picture.content, settings, max_bytes=settings.max_prediction_image_bytes).image
        predictions, _ = model_predictions(model, DomainType.OBJECT_DETECTION, image)
        detected.append(DetectedImage(0, picture.boxes, [p.box() for p in predictions]))
    return detected


def raccoon(root: Path, training_type: str, budget: float | None, device: TrainingDevice) -> Row:
    from training_job.detect import train_detector

    train_files, held_out_files = split(root)
    samples = [detection_sample(p) for p in photos(root, train_files)]
    held_out = photos(root, held_out_files)
    started = time.perf_counter()
    result = train_detector(
        samples,
        [RACCOON],
        backbone=domain_of(DOMAINS["compact"]).backbone,
        training_type=training_type,
        budget_seconds=budget,
        device=device,
    )
    seconds = time.perf_counter() - started
    performance = detection_performance(held_out_detections(result.onnx_model, held_out), [RACCOON.tag_id])
    return Row(
        "raccoon",
        training_type,
        result.device,
        len(samples),
        seconds,
        result.timings,
        "",
        result.cv_score,
        f"mAP@0.5 {performance.average_precision:.3f}, precision {performance.precision.value:.3f}, "
        f"recall {performance.recall.value:.3f} ({len(held_out)} images)",
    )


RUNS = {"hymenoptera": hymenoptera, "raccoon": raccoon}


def print_row(row: Row) -> None:
    phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in row.phases.items())
    print(
        f"| {row.dataset} | {row.training_type} | {row.device} | {row.images} | {row.seconds:.1f} | {phases} | "
        f"{row.kept} | {row.cv:.3f} | {row.held_out} |",
        flush=True,
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.training_core", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the shared datasets folder")
    parser.add_argument("--only", choices=sorted(RUNS), nargs="+", default=sorted(RUNS))
    parser.add_argument(
        "--training-type", choices=["Regular", "Advanced"], nargs="+", default=["Regular", "Advanced"]
    )
    parser.add_argument(
        "--advanced-budget", type=float, default=3600.0, help="Advanced training's budget, seconds (1 hour)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    present = [name for name in args.only if (args.datasets / name).is_dir()]
    for name in sorted(set(args.only) - set(present)):
        print(f"skipped: {args.datasets / name} is absent (see ../shared/datasets/README.md)")
    if not present:
        return 0
    print(f"machine: {machine()}; torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}")
    started = time.perf_counter()
    prepare_classifier_training([BACKBONE] if "hymenoptera" in present else [])
    if "raccoon" in present:
        prepare_detector_training()
    print(f"the standby's preparation (outside the clock): {time.perf_counter() - started:.1f} s")
    print()
    print(
        "| data set | training type | trained on | images | training core s | phases s | kept | CV | held out |"
    )
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    device = select_device(get_settings().training_device)
    for name in present:
        for training_type in args.training_type:
            budget = args.advanced_budget if training_type == "Advanced" else None  # Regular has none
            print_row(RUNS[name](args.datasets / name, training_type, budget, device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
