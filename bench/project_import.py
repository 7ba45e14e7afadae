"""ExportProject and ImportProject speed, to size the synchronous import's limit (`settings.max_import_images`).

    .venv/bin/python -m bench.project_import [--images 256]

One app (in-process, served by uvicorn) on a fresh Azurite: a project of real photos (../shared/datasets/hymenoptera,
or generated 640x480 JPEGs when absent) uploaded in batches of 64, exported, then imported into the same Seer.
Prints the export and import seconds, the import's milliseconds per image, and how many images fit in 200 s
(under the 230 s Azure's front end gives an HTTP request).
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

import httpx

from bench.common import DATASETS, TRAINING, TRAINING_KEY, machine
from devhost.azurite import running_azurite
from pipeline.api.app import create_app
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount, StoragePolicy
from tests.images import make_image
from tests.serving import served

REQUEST_BUDGET_SECONDS = 200


def _pictures(count: int) -> list[bytes]:
    photos = sorted(Path(DATASETS / "hymenoptera").rglob("*.jpg"))
    if photos:
        return [photos[i % len(photos)].read_bytes() + bytes(i // len(photos)) for i in range(count)]
    return [make_image(640, 480, seed=i) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    pictures = _pictures(args.images)
    with running_azurite() as connection_string:
        settings = Settings(
            storage_connection_string=connection_string,
            training_key=TRAINING_KEY,
            prediction_key="unused",
            allow_private_urls=True,
        )
        account = StorageAccount(settings.connection_string, StoragePolicy.from_settings(settings))
        with (
            served(create_app(settings, account)) as url,
            httpx.Client(
                base_url=f"{url}{TRAINING}", headers={"Training-Key": TRAINING_KEY}, timeout=600
            ) as http,
        ):
            project = http.post("/projects", params={"name": "bench-export"}).json()
            tag = http.post(f"/projects/{project['id']}/tags", params={"name": "photo"}).json()
            for start in range(0, len(pictures), 64):
                entries = [
                    {"name": f"{n}.jpg", "contents": base64.b64encode(p).decode()}
                    for n, p in enumerate(pictures[start : start + 64], start)
                ]
                body = {"images": entries, "tagIds": [tag["id"]], "metadata": {"batch": str(start)}}
                assert http.post(f"/projects/{project['id']}/images/files", json=body).status_code == 200
            started = time.monotonic()
            export = http.get(f"/projects/{project['id']}/export").json()
            exported = time.monotonic() - started
            started = time.monotonic()
            imported = http.post(
                "/projects/import", params={"token": export["token"], "name": "bench-import"}
            )
            seconds = time.monotonic() - started
            assert imported.status_code == 200, imported.text
    per_image_ms = 1000 * seconds / args.images
    size = sum(map(len, pictures)) / len(pictures) / 1024
    print(f"machine: {machine()}")
    print(
        f"{'images':>8} {'avg KiB':>8} {'export s':>9} {'import s':>9} {'ms/image':>9} {'fit in 200 s':>13}"
    )
    print(
        f"{args.images:>8} {size:>8.0f} {exported:>9.2f} {seconds:>9.2f} {per_image_ms:>9.1f} "
        f"{int(REQUEST_BUDGET_SECONDS * 1000 / per_image_ms):>13}"
    )


if __name__ == "__main__":
    main()
