"""Training speed, accuracy and memory, end to end through the running service.

    .venv/bin/python -m bench.train [--datasets DIR] [--advanced]

The service is started as the README's run command starts it (scripts/run.sh: the local Functions host and the
training job launched per queued request) on a fresh Azurite. For each dataset the images are uploaded through
the Training API, then the clock runs from `POST .../train` to the iteration reading "Completed" (polled every
0.1 s), so it includes queue dispatch (the run command keeps a standby training execution started, imported and with
the classification backbones exported, so a request meets a ready process; the clock starts once the service
has settled, as a request that comes a little after the upload meets it; a cold one adds its start, imports and
export), loading the images from storage,
training, cross-validation, ONNX export with its check, and storing the results. The training process's peak
resident memory (VmHWM) is sampled from /proc. Accuracy is measured over HTTP with the Prediction
API (nostore) on the published iteration.

Datasets (from ../shared/datasets; skipped with a message when absent):
  quickstart   customvision-samples/classification: Hemlock 10, Japanese_Cherry 10; Test/test_image.jpg
  hymenoptera  train/{ants,bees} 245 images; accuracy on val/{ants,bees} 153 images
"""

from __future__ import annotations

import argparse
import base64
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import (
    DATASETS,
    TRAINING,
    PeakMemory,
    Service,
    log_folder,
    machine,
    ok,
    seer_service,
    wait_until_settled,
)

PREDICTION = "/customvision/v3.0/prediction"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}


@dataclass(frozen=True)
class Dataset:
    name: str
    train: dict[str, list[Path]]  # tag -> files
    check: dict[str, list[Path]]  # expected tag -> files classified after training
    show: list[Path] = field(default_factory=list)  # files whose prediction is printed as it comes


@dataclass(frozen=True)
class Result:
    dataset: str
    training_type: str
    images: int
    upload_seconds: float
    train_seconds: float
    peak_mib: float
    precision: float
    recall: float
    average_precision: float
    correct: int
    checked: int
    shown: list[str]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def quickstart(root: Path) -> Dataset | None:
    base = root / "customvision-samples" / "classification"
    if not base.is_dir():
        return None
    train = {tag: _images(base / tag) for tag in ("Hemlock", "Japanese_Cherry")}
    # The issue expects Japanese_Cherry for test_image.jpg, but the photo shows a hemlock twig (needles, no
    # leaves); the prediction is printed rather than scored against either answer.
    return Dataset("quickstart", train, {}, show=[base / "Test" / "test_image.jpg"])


def hymenoptera(root: Path) -> Dataset | None:
    base = root / "hymenoptera"
    if not base.is_dir():
        return None
    tags = ("ants", "bees")
    return Dataset(
        "hymenoptera",
        {tag: _images(base / "train" / tag) for tag in tags},
        {tag: _images(base / "val" / tag) for tag in tags},
    )


def upload(client: httpx.Client, project_id: str, dataset: Dataset) -> int:
    count = 0
    for tag, files in dataset.train.items():
        tag_id = ok(client.post(f"{TRAINING}/projects/{project_id}/tags", params={"name": tag}))["id"]
        for start in range(0, len(files), 64):
            batch = files[start : start + 64]
            body = {
                "images": [
                    {"name": f.name, "contents": base64.b64encode(f.read_bytes()).decode()} for f in batch
                ],
                "tagIds": [tag_id],
            }
            response = client.post(f"{TRAINING}/projects/{project_id}/images/files", json=body)
            if response.status_code not in (200, 207):
                raise RuntimeError(response.text)
            count += sum(1 for i in response.json()["images"] if i["status"] in ("OK", "OKDuplicate"))
    return count


def train(client: httpx.Client, project_id: str, training_type: str) -> tuple[dict, float, float]:
    params = {"trainingType": training_type}
    if training_type == "Advanced":
        params["reservedBudgetInHours"] = "1"
    with PeakMemory("training_job") as memory:
        started = time.perf_counter()
        iteration = ok(client.post(f"{TRAINING}/projects/{project_id}/train", params=params))
        while iteration["status"] == "Training":
            time.sleep(0.1)
            iteration = ok(client.get(f"{TRAINING}/projects/{project_id}/iterations/{iteration['id']}"))
        seconds = time.perf_counter() - started
        time.sleep(0.3)  # one more sample after the job's last moments
    if iteration["status"] != "Completed":
        raise RuntimeError(f"training failed: {iteration.get('trainingErrorDetails')}")
    return iteration, seconds, memory.peak_mib


def check(
    client: httpx.Client, project_id: str, iteration: dict, dataset: Dataset
) -> tuple[int, int, list[str]]:
    name = f"bench-{iteration['id'][:8]}"
    ok(
        client.post(
            f"{TRAINING}/projects/{project_id}/iterations/{iteration['id']}/publish",
            params={"publishName": name, "predictionId": "bench"},
        )
    )
    url = f"{PREDICTION}/{project_id}/classify/iterations/{name}/image/nostore"

    def top(file: Path) -> dict:
        return ok(client.post(url, content=file.read_bytes()))["predictions"][0]

    correct = checked = 0
    for expected, files in dataset.check.items():
        for file in files:
            correct += top(file)["tagName"] == expected
            checked += 1
    shown = [
        f"{f.name}: {p['tagName']} {100 * p['probability']:.1f} %" for f in dataset.show if (p := top(f))
    ]
    return correct, checked, shown


def run(service: Service, dataset: Dataset, training_type: str) -> Result:
    with service.client(timeout=600) as client:
        project = ok(
            client.post(f"{TRAINING}/projects", params={"name": f"bench-{dataset.name}-{training_type}"})
        )
        started = time.perf_counter()
        images = upload(client, project["id"], dataset)
        upload_seconds = time.perf_counter() - started
        wait_until_settled(service.pid)  # the standby execution ready, as a request that comes later meets it
        iteration, seconds, peak = train(client, project["id"], training_type)
        performance = ok(
            client.get(f"{TRAINING}/projects/{project['id']}/iterations/{iteration['id']}/performance")
        )
        correct, checked, shown = check(client, project["id"], iteration, dataset)
    return Result(
        dataset.name,
        training_type,
        images,
        upload_seconds,
        seconds,
        peak,
        performance["precision"],
        performance["recall"],
        performance["averagePrecision"],
        correct,
        checked,
        shown,
    )


def held_out(result: Result) -> str:
    parts = list(result.shown)
    if result.checked:
        parts.append(
            f"{result.correct}/{result.checked} correct ({100 * result.correct / result.checked:.1f} %)"
        )
    return "; ".join(parts)


def print_table(results: list[Result]) -> None:
    print(
        "| dataset | training | images | upload s | train request to Completed s | peak job RSS MiB | "
        "CV precision | CV recall | CV AP | held-out result |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.dataset} | {r.training_type} | {r.images} | {r.upload_seconds:.1f} | {r.train_seconds:.1f} | "
            f"{r.peak_mib:.0f} | {r.precision:.3f} | {r.recall:.3f} | {r.average_precision:.3f} | "
            f"{held_out(r)} |"
        )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the shared datasets folder")
    parser.add_argument("--advanced", action="store_true", help="also train each dataset with Advanced")
    parser.add_argument("--only", choices=("quickstart", "hymenoptera"), help="one dataset only")
    parser.add_argument(
        "--logs", type=Path, help="keep the service's and training job's output in this folder"
    )
    return parser


def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    datasets = [d for d in (quickstart(args.datasets), hymenoptera(args.datasets)) if d is not None]
    datasets = [d for d in datasets if args.only in (None, d.name)]
    if not datasets:
        print(f"SKIPPED: no datasets under {args.datasets} (set SEER_DATASETS or pass --datasets)")
        return
    types = ("Regular", "Advanced") if args.advanced else ("Regular",)
    results = []
    with log_folder(args.logs) as logs, seer_service(Path(logs)) as service:
        for dataset in datasets:
            for training_type in types:
                results.append(run(service, dataset, training_type))
                print(f"done: {dataset.name} {training_type}", flush=True)
    print()
    print_table(results)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
