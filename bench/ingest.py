"""Ingestion throughput: images per second through the API batch upload and through the blob drop folder.

    .venv/bin/python -m bench.ingest [--dataset DIR] [--batch 64]

Everything runs on this machine against a fresh in-memory Azurite (devhost.azurite):
  (a) API: CreateImagesFromFiles in batches of up to 64, over real HTTP to uvicorn in its own process;
      the clock runs from the first request to the last response (bodies are base64-encoded beforehand).
  (b) drop folder: the files are uploaded to uploads/{project}/{tag}/{file} while the local Functions host
      (`python -m devhost`, polling every --poll seconds) runs; the clock runs from the first upload
      until every image is stored or rejected.
  (c) drop folder, ingestion function called directly: upload, then `pipeline.services.ingest.ingest_blob`, one file at a
      time in this process; the cost of ingestion itself, without the host's polling.
The dataset is ../shared/datasets/hymenoptera/train ({tag}/{file}); the benchmark is skipped when it is absent.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import machine, serving
from devhost.azurite import running_azurite
from devhost.ports import free_port
from pipeline.core.settings import get_settings
from pipeline.services.ingest import ingest_blob
from pipeline.services.projects import create_project
from pipeline.store import StorageAccount, get_storage
from pipeline.store.images import ImageStore, UploadStore

log = logging.getLogger("bench.ingest")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "hymenoptera" / "train"
TRAINING_KEY = "bench-training-key"
TRAINING = "/customvision/v3.3/training"


@dataclass(frozen=True)
class Sample:
    tag: str
    name: str
    data: bytes


@dataclass(frozen=True)
class Row:
    label: str
    images: int
    seconds: float
    failures: int

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Expected:
    """What the API run stored, which the drop-folder runs must reproduce to count as finished."""

    stored: int
    failures: int


def load_dataset(root: Path) -> list[Sample]:
    return [
        Sample(tag=folder.name, name=file.name, data=file.read_bytes())
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for file in sorted(folder.iterdir())
        if file.is_file()
    ]


def bench_api(env: dict[str, str], samples: list[Sample], batch: int, log_dir: Path) -> tuple[Row, Expected]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "pipeline.api.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with (
        serving(command, env, port, log_dir, "uvicorn"),
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}{TRAINING}", headers={"Training-Key": TRAINING_KEY}, timeout=600
        ) as http,
    ):
        project_id = http.post("/projects", params={"name": "bench-api"}).json()["id"]
        tags = {
            tag: http.post(f"/projects/{project_id}/tags", params={"name": tag}).json()["id"]
            for tag in sorted({s.tag for s in samples})
        }
        bodies = [
            {
                "images": [
                    {
                        "name": f"{s.tag}/{s.name}",
                        "contents": base64.b64encode(s.data).decode(),
                        "tagIds": [tags[s.tag]],
                    }
                    for s in samples[start : start + batch]
                ]
            }
            for start in range(0, len(samples), batch)
        ]
        started = time.perf_counter()
        results = []
        for body in bodies:
            response = http.post(f"/projects/{project_id}/images/files", json=body)
            if response.status_code not in (200, 207):
                raise RuntimeError(f"upload failed: HTTP {response.status_code} {response.text[:500]}")
            results += response.json()["images"]
        seconds = time.perf_counter() - started
    failed = [r for r in results if r["status"] not in ("OK", "OKDuplicate")]
    for result in failed:
        print(f"    API failure: {result['sourceUrl']}: {result['status']}")
    stored = len({r["image"]["id"] for r in results if r["image"]})
    row = Row(f"(a) API CreateImagesFromFiles, {batch}/batch, HTTP", len(samples), seconds, len(failed))
    return row, Expected(stored=stored, failures=len(failed))


def _wait_until_ingested(account: StorageAccount, project_id: str, name: str, expected: Expected) -> int:
    """Poll storage until the project holds every image and every reject is written; return the rejects."""
    images, uploads = ImageStore(account), UploadStore(account)
    deadline = time.monotonic() + 600
    while True:
        rejected = sum(1 for n in uploads.names(f"rejected/{name}/") if n.endswith(".reason.json"))
        if images.count(project_id) >= expected.stored and rejected >= expected.failures:
            return rejected
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {images.count(project_id)} of {expected.stored} images after 600 s")
        time.sleep(0.1)


def bench_local_host(
    env: dict[str, str],
    account: StorageAccount,
    samples: list[Sample],
    expected: Expected,
    poll: float,
    log_dir: Path,
) -> Row:
    project = create_project(account, get_settings(), "bench-drop-host")
    port = free_port()
    command = [sys.executable, "-m", "devhost", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--blob-poll-interval", str(poll), "--log-level", "WARNING"]
    with serving(command, env, port, log_dir, "devhost"):
        started = time.perf_counter()
        uploads = UploadStore(account)
        with ThreadPoolExecutor(max_workers=8) as pool:  # a client copying a folder uploads in parallel
            list(pool.map(lambda s: uploads.put(f"{project.name}/{s.tag}/{s.name}", s.data), samples))
        rejected = _wait_until_ingested(account, project.id, project.name, expected)
        seconds = time.perf_counter() - started
    label = f"(b) drop folder via local host (poll {poll:g} s)"
    return Row(label, len(samples), seconds, rejected)


def bench_direct(
    connection_string: str, account: StorageAccount, samples: list[Sample], expected: Expected
) -> Row:
    # ingest_blob reads the process settings; point them at this benchmark's Azurite.
    os.environ["AzureWebJobsStorage"] = connection_string  # noqa: SIM112 (the name Azure Functions defines)
    get_settings.cache_clear()
    get_storage.cache_clear()
    project = create_project(account, get_settings(), "bench-drop-direct")
    uploads = UploadStore(account)
    started = time.perf_counter()
    for sample in samples:
        name = f"{project.name}/{sample.tag}/{sample.name}"
        uploads.put(name, sample.data)
        ingest_blob(f"uploads/{name}", sample.data)
    rejected = _wait_until_ingested(account, project.id, project.name, expected)
    seconds = time.perf_counter() - started
    return Row("(c) drop folder, ingestion function called directly", len(samples), seconds, rejected)


def print_table(rows: list[Row]) -> None:
    width = max(len(r.label) for r in rows)
    print(f"{'path':<{width}}  {'images':>6}  {'seconds':>8}  {'images/s':>8}  {'failures':>8}")
    for r in rows:
        print(f"{r.label:<{width}}  {r.images:>6}  {r.seconds:>8.2f}  {r.rate:>8.1f}  {r.failures:>8}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="folder of {tag}/{file} images")
    parser.add_argument("--batch", type=int, default=64, help="images per CreateImagesFromFiles request")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="the local host's blob poll interval, seconds"
    )
    return parser


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"machine: {machine()}")
    if not args.dataset.is_dir():
        print(f"SKIPPED: dataset {args.dataset} not found (expected {{tag}}/{{file}} images)")
        return
    samples = load_dataset(args.dataset)
    total = sum(len(s.data) for s in samples)
    tags = len({s.tag for s in samples})
    print(f"dataset: {args.dataset} ({len(samples)} files, {tags} tags, {total / 1e6:.1f} MB)")
    rows = []
    with running_azurite() as connection_string, tempfile.TemporaryDirectory(prefix="seer-bench-") as logs:
        env = {**os.environ, "AzureWebJobsStorage": connection_string, "SEER_TRAINING_KEY": TRAINING_KEY}
        account = StorageAccount(connection_string)
        api, expected = bench_api(env, samples, args.batch, Path(logs))
        rows.append(api)
        if importlib.util.find_spec("devhost.__main__") is not None:
            rows.append(bench_local_host(env, account, samples, expected, args.poll, Path(logs)))
        else:
            print("note: devhost is not available; the drop folder is measured only by calling the function")
        rows.append(bench_direct(connection_string, account, samples, expected))
    print()
    print_table(rows)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
