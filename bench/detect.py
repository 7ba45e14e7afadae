"""Object detection accuracy and speed on the raccoon data set, end to end through the running service.

    .venv/bin/python -m bench.detect [--datasets DIR] [--domain compact|general] [--training-type Regular Advanced]
                                     [--mosaic N]

raccoon/ (images/ 200 JPEGs, annotations/ Pascal VOC XML with pixel boxes) split as its author did: sorted by
name, the first 160 train and the last 40 are held out. The 160 go up through the Training API with their
regions; the clock runs from `POST .../train` to the iteration reading "Completed" (queue dispatch, the job's
process start, loading, the backbone's pass over every view, k-fold cross-validation of the head, the final
head, ONNX export and its check, storing). The held-out 40 are then sent to the Prediction API (detect, nostore)
of the published iteration, one at a time (each training type trains its own project, one after the other;
Advanced with a 1-hour reservedBudgetInHours); mAP at 0.5 overlap is computed on their boxes with
`pipeline.vision.metrics` (all-point interpolated AP, PASCAL VOC style), and latency is the HTTP round trip per image.
`--mosaic N` makes the objects small: it sends 40 training and 10 held-out pictures of N x N tiles instead, each
tile a photo of the split drawn at random (seeded) and stretched to its tile, with its boxes scaled into it.
Skips with a message when the data set is absent.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench.common import DATASETS, TRAINING, PeakMemory, log_folder, machine, ok, seer_service
from pipeline.core.boxes import Box
from pipeline.vision.annotations import read_voc
from pipeline.vision.metrics import DetectedImage, detection_performance

PREDICTION = "/customvision/v3.0/prediction"
DOMAINS = {
    "compact": "a27d5ca5-bb19-49d8-a70a-fec086c47f5b",  # General (compact): EfficientNet-Lite0
    "general": "da2e3a8a-40a5-4171-82f4-58522f70fbc1",  # General: EfficientNet-Lite2
}
TRAIN_IMAGES = 160
MOSAIC_SIDE = 640  # pixels
MOSAICS = {"train": 40, "held out": 10}


@dataclass(frozen=True)
class Picture:
    """One image the bench sends, and its raccoons."""

    name: str
    content: bytes
    boxes: list[Box]


def split(root: Path) -> tuple[list[Path], list[Path]]:
    files = sorted((root / "images").glob("*.jpg"), key=lambda p: p.name)
    return files[:TRAIN_IMAGES], files[TRAIN_IMAGES:]


def boxes(root: Path, image: Path) -> list:
    return read_voc((root / "annotations" / f"{image.stem}.xml").read_bytes())


def photos(root: Path, files: list[Path]) -> list[Picture]:
    return [
        Picture(
            f.name, f.read_bytes(), [Box("raccoon", b.left, b.top, b.width, b.height) for b in boxes(root, f)]
        )
        for f in files
    ]


def mosaics(pictures: list[Picture], grid: int, count: int, seed: int) -> list[Picture]:
    """`count` pictures of `grid` x `grid` tiles, each one of `pictures` drawn at random and stretched to its tile,
    with its boxes scaled into it."""
    rng, tile = random.Random(seed), MOSAIC_SIDE // grid
    made = []
    for number in range(count):
        canvas, found = Image.new("RGB", (tile * grid, tile * grid)), []
        for row in range(grid):
            for column in range(grid):
                picture = rng.choice(pictures)
                with Image.open(io.BytesIO(picture.content)) as photo:
                    canvas.paste(photo.convert("RGB").resize((tile, tile)), (column * tile, row * tile))
                found += [
                    Box(
                        "raccoon",
                        (column + b.left) / grid,
                        (row + b.top) / grid,
                        b.width / grid,
                        b.height / grid,
                    )
                    for b in picture.boxes
                ]
        encoded = io.BytesIO()
        canvas.save(encoded, "JPEG", quality=90)
        made.append(Picture(f"mosaic-{seed}-{number}.jpg", encoded.getvalue(), found))
    return made


def pictures(root: Path, mosaic: int) -> tuple[list[Picture], list[Picture]]:
    """(training, held out): the split's photos, or mosaics of each side's photos."""
    train, held_out = (photos(root, files) for files in split(root))
    if not mosaic:
        return train, held_out
    return mosaics(train, mosaic, MOSAICS["train"], 1), mosaics(held_out, mosaic, MOSAICS["held out"], 2)


def upload(client, project_id: str, tag_id: str, train: list[Picture]) -> None:
    for start in range(0, len(train), 64):
        body = {
            "images": [
                {
                    "name": picture.name,
                    "contents": base64.b64encode(picture.content).decode(),
                    "regions": [
                        {"tagId": tag_id, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
                        for b in picture.boxes
                    ],
                }
                for picture in train[start : start + 64]
            ]
        }
        summary = ok(client.post(f"{TRAINING}/projects/{project_id}/images/files", json=body))
        if not summary["isBatchSuccessful"]:
            raise RuntimeError(f"upload failed: {summary}")


def run(root: Path, domain: str, training_type: str, mosaic: int, log_dir: Path) -> dict[str, object]:
    train, held_out = pictures(root, mosaic)
    with seer_service(log_dir) as service, service.client(timeout=900) as client:
        project = ok(
            client.post(f"{TRAINING}/projects", params={"name": "bench-raccoon", "domainId": DOMAINS[domain]})
        )
        tag = ok(client.post(f"{TRAINING}/projects/{project['id']}/tags", params={"name": "raccoon"}))
        upload(client, project["id"], tag["id"], train)
        with PeakMemory("training_job") as memory:
            started = time.perf_counter()
            iteration = ok(
                client.post(
                    f"{TRAINING}/projects/{project['id']}/train",
                    params={"trainingType": training_type, "reservedBudgetInHours": 1},
                )
            )
            while iteration["status"] == "Training":
                time.sleep(0.5)
                iteration = ok(
                    client.get(f"{TRAINING}/projects/{project['id']}/iterations/{iteration['id']}")
                )
            train_seconds = time.perf_counter() - started
        if iteration["status"] != "Completed":
            raise RuntimeError(f"training failed: {iteration.get('trainingErrorDetails')}")
        base = f"{TRAINING}/projects/{project['id']}/iterations/{iteration['id']}"
        cv = ok(client.get(f"{base}/performance", params={"threshold": 0.5, "overlapThreshold": 0.5}))
        ok(client.post(f"{base}/publish", params={"publishName": "bench", "predictionId": "bench"}))
        url = f"{PREDICTION}/{project['id']}/detect/iterations/bench/image/nostore"
        ok(client.post(url, content=held_out[0].content))  # loads the model into the cache
        images, latencies = [], []
        for picture in held_out:
            sent = time.perf_counter()
            predictions = ok(client.post(url, content=picture.content))["predictions"]
            latencies.append(time.perf_counter() - sent)
            images.append(
                DetectedImage(
                    0,
                    picture.boxes,
                    [Box("raccoon", **p["boundingBox"], probability=p["probability"]) for p in predictions],
                )
            )
    performance = detection_performance(images, ["raccoon"], threshold=0.5, overlap=0.5)
    return {
        "domain": domain,
        "training_type": training_type,
        "train_images": len(train),
        "held_out": len(held_out),
        "train_seconds": train_seconds,
        "peak_mib": memory.peak_mib,
        "cv_map": cv["averagePrecision"],
        "map": performance.average_precision,
        "precision": performance.precision.value,
        "recall": performance.recall.value,
        "latency_ms": 1000 * statistics.median(latencies),
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.detect", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the shared datasets folder")
    parser.add_argument("--domain", choices=sorted(DOMAINS), nargs="+", default=["compact"])
    parser.add_argument(
        "--training-type", choices=["Regular", "Advanced"], nargs="+", default=["Regular", "Advanced"]
    )
    parser.add_argument(
        "--mosaic", type=int, default=0, metavar="N", help="send mosaics of N x N photos: small raccoons"
    )
    parser.add_argument(
        "--logs", type=Path, help="keep the service's and training job's output in this folder"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    root = args.datasets / "raccoon"
    if not (root / "images").is_dir():
        print(f"skipped: {root} is absent (see ../shared/datasets/README.md)")
        return 0
    print(f"machine: {machine()}")
    if args.mosaic:
        print(f"mosaics of {args.mosaic} x {args.mosaic} raccoon photos, {MOSAIC_SIDE} px")
    print()
    print(
        "| detection domain | training type | train images | train request to Completed s | peak job RSS MiB | CV mAP@0.5 | "
        "held-out images | val mAP@0.5 | val precision | val recall | latency per image ms (HTTP, median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with log_folder(args.logs) as logs:
        for domain in args.domain:
            for training_type in args.training_type:
                r = run(root, domain, training_type, args.mosaic, Path(logs))
                print(
                    f"| {r['domain']} | {r['training_type']} | {r['train_images']} | {r['train_seconds']:.0f} | "
                    f"{r['peak_mib']:.0f} | {r['cv_map']:.3f} | {r['held_out']} | {r['map']:.3f} | "
                    f"{r['precision']:.3f} | {r['recall']:.3f} | {r['latency_ms']:.1f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
