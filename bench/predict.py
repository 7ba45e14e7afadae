"""Prediction latency and throughput over HTTP against the running service.

    .venv/bin/python -m bench.predict [--datasets DIR] [--seconds 10] [--rounds 3] [--service-cores N]

The service is started as the README's run command starts it (scripts/run.sh) on a fresh Azurite. The Custom
Vision quickstart project (Hemlock / Japanese Cherry from ../shared/datasets/customvision-samples; skipped when
absent) is trained twice, on the General domain (EfficientNet-Lite2) and on General (compact)
(EfficientNet-Lite0), and each is published; the request image is the quickstart's
test_image.jpg fitted to 640x480 (JPEG, quality 90). Measured with clients in this process, each one keep-alive
connection of the standard library's http.client (they share the cores with the service, as a co-located client
would; http.client costs them about 0.25 ms of CPU per request where httpx cost 0.7). Each model is measured once
the service has settled (after a training run the local host's next standby training execution imports torch for
a few seconds):
  - --rounds back-to-back rounds (3): the latency of one classify nostore request, sequentially (median, p90,
    p99); the route's throughput with 4 concurrent clients for --seconds; the same 4-at-a-time load through the
    service's own ASGI app in this process, with no HTTP (bench/app_in_process.py: what the app costs apart from the
    HTTP server and the clients, and its event loop's share); and the in-process floor for the same
    model and image, in this process with no HTTP and no storage: the service's decode (`decode_image`) and
    preprocessing (`preprocess`) and ONNX Runtime. The floor's latency is the faster of one session with every
    core (as the service runs a lone request) and one single-threaded session; its throughput is one thread per
    core, each with its own single-threaded session, for --seconds. Each round's service figures are shares of its
    floor (issue 16's target: 4 clients at >= 90 % of the floor's throughput, sequential latency <= 1.3x the
    floor's), printed as the median and range over the rounds, beside the median round's CPU time per image of the
    floor's throughput run and per request of the service (the local host and its child processes, from /proc)
    and of the clients: what the HTTP service costs beyond the floor's work, whatever else runs on the machine;
  - then the stored route's sequential latency, and the nostore route's throughput with 1 and 16 clients.
With `--service-cores N` the local Functions host (and the training executions it starts) runs on the first N
cores, and this process's clients and Azurite (which stands for Azure Storage, a service of its own in Azure) on the
others, so the clients' HTTP work is not taken from the host's cores; the floor then runs on the same N cores. On
2 cores, N=1 measures one core of serving against one core of floor.
Then Seer's INT8 serving mode (compact domains): a General (compact) classifier trained on hymenoptera/train, served
as trained and then, after its ONNX INT8 export, published with `precision=INT8`: for each, the accuracy on
hymenoptera/val (153 photos, through the Prediction API), the sequential latency and 4-client throughput with the
request image, and the in-process floor of that model.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import statistics
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

from bench.app_in_process import AppLoad, InProcessApp
from bench.common import (
    DATASETS,
    PREDICTION_KEY,
    TRAINING,
    Service,
    machine,
    ok,
    seer_service,
    tree_cpu_seconds,
    wait_until_settled,
)
from bench.train import Dataset, hymenoptera, quickstart, train, upload
from pipeline.contract.exports import onnx_model_of_export
from pipeline.core.cores import usable_cores
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore
from pipeline.store.iterations import IterationStore, artefact_name
from pipeline.vision.imaging import decode_image
from pipeline.vision.inference import new_session
from pipeline.vision.preprocessing import preprocess

PREDICTION = "/customvision/v3.0/prediction"
S0_NO_STORE_TPS = 20  # Azure Custom Vision S0: 20 transactions per second per resource (no-store prediction)


@dataclass(frozen=True)
class Load:
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    service_cpu: float  # seconds of CPU, the local host and its children
    client_cpu: float  # seconds of CPU, this process's client threads

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def per_request(self, cpu_seconds: float) -> float:
        return cpu_seconds / max(self.requests, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def request_image(dataset_root: Path) -> bytes:
    photo = Image.open(dataset_root / "customvision-samples" / "classification" / "Test" / "test_image.jpg")
    fitted = ImageOps.fit(ImageOps.exif_transpose(photo).convert("RGB"), (640, 480))
    buffer = io.BytesIO()
    fitted.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class Poster:
    """One keep-alive HTTP/1.1 connection POSTing one image to one prediction URL, from the standard library's
    http.client: the load generator. The clients share the machine's cores with the service, so what they cost is
    taken from it; httpx costs about 0.7 ms of CPU per request, this a fraction of that (the tables print it)."""

    def __init__(self, service: Service, path: str, image: bytes) -> None:
        address = urllib.parse.urlsplit(service.url)
        self._connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
        self._path = path
        self._image = image
        self._headers = {"Prediction-Key": PREDICTION_KEY, "Content-Type": "application/octet-stream"}

    def post(self) -> tuple[int, bytes]:
        """The response's status and body."""
        self._connection.request("POST", self._path, body=self._image, headers=self._headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._connection.close()


def sequential(service: Service, url: str, image: bytes, count: int) -> list[float]:
    latencies = []
    with contextlib.closing(Poster(service, url, image)) as poster:
        for _ in range(count):
            started = time.perf_counter()
            status, body = poster.post()
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"POST {url}: {status} {body.decode(errors='replace')}")
    return latencies


def concurrent(service: Service, url: str, image: bytes, clients: int, seconds: float) -> Load:
    """`clients` threads, each POSTing on its own connection for `seconds`; the CPU that the service (the local
    host and its children) and this process's clients used meanwhile."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client_loop() -> None:
        with contextlib.closing(Poster(service, url, image)) as poster:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    ok = poster.post()[0] == 200
                except (OSError, http.client.HTTPException):
                    poster.close()  # http.client reconnects on the next request
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    service_cpu, client_cpu = tree_cpu_seconds(service.pid), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(
        clients,
        len(latencies),
        errors[0],
        time.perf_counter() - started,
        latencies,
        tree_cpu_seconds(service.pid) - service_cpu,
        time.process_time() - client_cpu,
    )


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def cpu_ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f}"


DOMAINS = {
    "General (EfficientNet-Lite2)": "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31",
    "General (compact) (EfficientNet-Lite0)": "0732100f-1a38-4e49-a514-c9b44c697ab5",
}


@dataclass(frozen=True)
class Placement:
    """Which cores the local host (`service`) and this process's clients and Azurite run on: all of them, shared,
    unless --service-cores."""

    service: frozenset[int]
    clients: frozenset[int]

    @classmethod
    def split(cls, service_cores: str) -> Placement:
        """The first `service_cores` of this process's cores for the service, the rest for the clients."""
        cores = sorted(os.sched_getaffinity(0))
        count = int(service_cores)
        if not 0 < count < len(cores):
            raise argparse.ArgumentTypeError(f"--service-cores must be 1 to {len(cores) - 1} here")
        return cls(frozenset(cores[:count]), frozenset(cores[count:]))

    @classmethod
    def shared(cls) -> Placement:
        cores = frozenset(os.sched_getaffinity(0))
        return cls(cores, cores)

    def __str__(self) -> str:
        if self.service == self.clients:
            return f"the local host, Azurite and the clients share cores {sorted(self.service)}"
        return f"the local host on cores {sorted(self.service)}; Azurite and the clients on {sorted(self.clients)}"


@contextlib.contextmanager
def on_cores(cores: frozenset[int]) -> Iterator[None]:
    """Run the block on `cores`: this thread, and the threads and processes it starts, which inherit them."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class Floor:
    """The same work as a nostore classify, in this process: no HTTP, no routing, no storage."""

    latencies: list[float]  # one image at a time
    rate: float  # images/s, one thread and single-threaded session per core
    cpu_per_image: float  # seconds of CPU, at that rate


def _classify_in_process(session: ort.InferenceSession, image: bytes, settings: Settings) -> np.ndarray:
    decoded = decode_image(image, settings, max_bytes=settings.max_prediction_image_bytes)
    size = int(session.get_inputs()[0].shape[-1])
    return session.run(None, {session.get_inputs()[0].name: preprocess(decoded.image, size)[np.newaxis]})[0]


def in_process_floor(model: bytes, image: bytes, args: argparse.Namespace) -> Floor:
    """Measured on the service's cores (`args.placement`)."""
    with on_cores(args.placement.service):
        return _floor(model, image, args.requests, args.seconds)


def _floor(model: bytes, image: bytes, requests: int, seconds: float) -> Floor:
    settings = Settings()
    cores = usable_cores()
    by_threads = {}
    for intra_op in (cores, 1):
        session = new_session(model, intra_op)
        for _ in range(20):  # warm-up
            _classify_in_process(session, image, settings)
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            _classify_in_process(session, image, settings)
            latencies.append(time.perf_counter() - started)
        by_threads[intra_op] = latencies
    fastest = min(by_threads.values(), key=statistics.median)

    sessions = [new_session(model, 1) for _ in range(cores)]
    counts = [0] * cores
    deadline = time.perf_counter() + seconds

    def loop(worker: int) -> None:
        while time.perf_counter() < deadline:
            _classify_in_process(sessions[worker], image, settings)
            counts[worker] += 1

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(cores)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    images = sum(counts)
    return Floor(fastest, images / (time.perf_counter() - started), (time.process_time() - cpu) / images)


@dataclass(frozen=True)
class Round:
    """A sequential run and a 4-client load of the nostore route, the same load through the app in process, then
    the floor, back to back, so that their ratios compare like with like: this shared VM's speed drifts by 10 % and
    more between minutes."""

    nostore: list[float]
    four_clients: Load
    app: AppLoad  # the same 4 at a time, through the app in this process with no HTTP
    floor: Floor

    @property
    def latency_ratio(self) -> float:
        return statistics.median(self.nostore) / statistics.median(self.floor.latencies)

    @property
    def throughput_share(self) -> float:
        return self.four_clients.rate / self.floor.rate

    @property
    def app_share(self) -> float:
        return self.app.rate / self.floor.rate


@dataclass(frozen=True)
class Measured:
    domain: str
    stored: list[float]
    loads: list[Load]  # 1 and 16 clients
    rounds: list[Round]

    @property
    def middle(self) -> Round:
        """The round with the median 4-client share of the floor."""
        return sorted(self.rounds, key=lambda round_: round_.throughput_share)[len(self.rounds) // 2]


def publish_quickstart(service: Service, dataset, domain_id: str, name: str) -> tuple[str, str]:
    """Train the quickstart on `domain_id` and publish it as `name`; returns the project and iteration ids."""
    with service.client(timeout=600) as client:
        project = ok(client.post(f"{TRAINING}/projects", params={"name": name, "domainId": domain_id}))
        upload(client, project["id"], dataset)
        iteration, _, _ = train(client, project["id"], "Regular")
        ok(
            client.post(
                f"{TRAINING}/projects/{project['id']}/iterations/{iteration['id']}/publish",
                params={"publishName": "bench", "predictionId": "bench"},
            )
        )
    return project["id"], iteration["id"]


def trained_model(service: Service, ids: tuple[str, str]) -> bytes:
    """The iteration's model as the training job stored it (project id, iteration id)."""
    return IterationStore(StorageAccount(service.connection_string)).read_artefact(
        artefact_name(*ids, "model.onnx")
    )


def measure(
    service: Service, ids: tuple[str, str], image: bytes, domain: str, args: argparse.Namespace
) -> Measured:
    project_id = ids[0]
    base = f"{PREDICTION}/{project_id}/classify/iterations/bench/image"
    model = trained_model(service, ids)
    wait_until_settled(service.pid)
    sequential(service, f"{base}/nostore", image, 20)  # warm-up: model load, connections
    with on_cores(args.placement.service):  # the app's loop and work threads inherit the service's cores
        app = InProcessApp(service)
    try:
        rounds = [
            Round(
                sequential(service, f"{base}/nostore", image, args.requests),
                concurrent(service, f"{base}/nostore", image, 4, args.seconds),
                app.load(f"{base}/nostore", image, 4, args.seconds),
                in_process_floor(model, image, args),
            )
            for _ in range(args.rounds)
        ]
    finally:
        app.close()
    stored = sequential(service, base, image, args.requests // 2)
    loads = [concurrent(service, f"{base}/nostore", image, n, args.seconds) for n in (1, 16)]
    return Measured(domain, stored, loads, rounds)


def print_tables(image: bytes, results: list[Measured]) -> None:
    print(
        f"\nrequest: 640x480 JPEG ({len(image)} bytes); the nostore and 4-client figures from each model's median round\n"
    )
    print("| model | route, 1 client, sequential | requests | median ms | p90 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for result in results:
        for name, values in (
            ("classify nostore", result.middle.nostore),
            ("classify (stored)", result.stored),
        ):
            print(
                f"| {result.domain} | {name} | {len(values)} | {ms(statistics.median(values))} | "
                f"{ms(percentile(values, 0.9))} | {ms(percentile(values, 0.99))} |"
            )
    print(
        "\n| model | concurrent clients (nostore) | requests | errors | requests/s | median ms | p99 ms | vs S0 (20/s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        for load in sorted([*result.loads, result.middle.four_clients], key=lambda load: load.clients):
            print(
                f"| {result.domain} | {load.clients} | {load.requests} | {load.errors} | {load.rate:.1f} | "
                f"{ms(statistics.median(load.latencies))} | {ms(percentile(load.latencies, 0.99))} | "
                f"{load.rate / S0_NO_STORE_TPS:.1f}x |"
            )
    print(
        "\n| model | rounds | sequential, HTTP / floor: median (range) | 4 clients, % of floor: median (range) "
        "| median round: ms / floor ms, req/s / floor images/s "
        "| CPU ms: floor per image | service per request | clients per request "
        "| app in process, 4 at a time, no HTTP: % of floor, median (range) | its CPU ms per request (event loop) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        latency = sorted(round_.latency_ratio for round_ in result.rounds)
        share = sorted(100 * round_.throughput_share for round_ in result.rounds)
        app_share = sorted(100 * round_.app_share for round_ in result.rounds)
        middle = result.middle
        four = middle.four_clients
        print(
            f"| {result.domain} | {len(result.rounds)} | {statistics.median(latency):.2f}x "
            f"({latency[0]:.2f} to {latency[-1]:.2f}) | {statistics.median(share):.0f} % "
            f"({share[0]:.0f} to {share[-1]:.0f}) | {ms(statistics.median(middle.nostore))} / "
            f"{ms(statistics.median(middle.floor.latencies))}, {four.rate:.1f} / {middle.floor.rate:.1f} | "
            f"{cpu_ms(middle.floor.cpu_per_image)} | {cpu_ms(four.per_request(four.service_cpu))} | "
            f"{cpu_ms(four.per_request(four.client_cpu))} | {statistics.median(app_share):.0f} % "
            f"({app_share[0]:.0f} to {app_share[-1]:.0f}) | {cpu_ms(middle.app.cpu_per_request)} "
            f"({cpu_ms(middle.app.loop_cpu_per_request)}) |"
        )


@dataclass(frozen=True)
class Served:
    mode: str
    accuracy: float
    sequential: list[float]
    four_clients: Load
    floor: Floor


def val_accuracy(service: Service, project_id: str, dataset: Dataset) -> float:
    url = f"{PREDICTION}/{project_id}/classify/iterations/bench/image/nostore"
    right = total = 0
    with service.client() as client:
        for tag, files in dataset.check.items():
            for file in files:
                best = max(
                    ok(client.post(url, content=file.read_bytes()))["predictions"],
                    key=lambda p: p["probability"],
                )
                right += best["tagName"] == tag
                total += 1
    return right / total


def served(
    service: Service,
    ids: tuple[str, str],
    model: bytes,
    dataset: Dataset,
    image: bytes,
    mode: str,
    args: argparse.Namespace,
) -> Served:
    url = f"{PREDICTION}/{ids[0]}/classify/iterations/bench/image/nostore"
    accuracy = val_accuracy(service, ids[0], dataset)
    wait_until_settled(service.pid)
    sequential(service, url, image, 20)
    latencies = sequential(service, url, image, args.requests)
    four = concurrent(service, url, image, 4, args.seconds)
    return Served(mode, accuracy, latencies, four, in_process_floor(model, image, args))


def measure_int8_serving(
    service: Service, dataset: Dataset, image: bytes, args: argparse.Namespace
) -> list[Served]:
    """The compact hymenoptera classifier served as trained, then by its ONNX INT8 export."""
    compact = DOMAINS["General (compact) (EfficientNet-Lite0)"]
    with service.client(timeout=600) as client:
        project = ok(client.post(f"{TRAINING}/projects", params={"name": "bench-int8", "domainId": compact}))
        upload(client, project["id"], dataset)
        iteration, _, _ = train(client, project["id"], "Regular")
        at = f"{TRAINING}/projects/{project['id']}/iterations/{iteration['id']}"
        publish = {"publishName": "bench", "predictionId": "bench"}
        ok(client.post(f"{at}/publish", params=publish))
        ids = (project["id"], iteration["id"])
        results = [
            served(service, ids, trained_model(service, ids), dataset, image, "FP32 (as trained)", args)
        ]
        ok(client.post(f"{at}/export", params={"platform": "ONNX", "flavor": "ONNX12", "precision": "INT8"}))
        while (export := ok(client.get(f"{at}/export"))[0])["status"] == "Exporting":
            time.sleep(0.5)
        if export["status"] != "Done":
            raise RuntimeError(f"the INT8 export failed: {export.get('reason')}")
        ok(client.post(f"{at}/publish", params={**publish, "precision": "INT8"}))
        time.sleep(2.5)  # the prediction URL's remembered target (SEER_PUBLISHED_CACHE_SECONDS) expires
        assert ok(client.get(at))["servingPrecision"] == "INT8"
    exports = ExportStore(StorageAccount(service.connection_string))
    [record] = exports.list(*ids)
    assert record.blob is not None
    quantized = onnx_model_of_export(b"".join(exports.stream(record.blob)))  # model.onnx in the export's zip
    results.append(served(service, ids, quantized, dataset, image, "INT8 (precision=INT8)", args))
    return results


def print_int8(results: list[Served]) -> None:
    print(
        "\n| General (compact) on hymenoptera | val accuracy | sequential median ms | floor ms | 4 clients req/s | floor images/s |"
    )
    print("|---|---|---|---|---|---|")
    for result in results:
        print(
            f"| {result.mode} | {100 * result.accuracy:.1f} % | {ms(statistics.median(result.sequential))} | "
            f"{ms(statistics.median(result.floor.latencies))} | {result.four_clients.rate:.1f} | {result.floor.rate:.1f} |"
        )


def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    dataset = quickstart(args.datasets)
    if dataset is None:
        print(f"SKIPPED: customvision-samples not found under {args.datasets}")
        return
    image = request_image(args.datasets)
    results = []
    print(args.placement)
    # The clients, and Azurite (which stands for Azure Storage), on the clients' cores.
    os.sched_setaffinity(0, args.placement.clients)
    with (
        tempfile.TemporaryDirectory(prefix="seer-bench-") as logs,
        seer_service(Path(logs), host_cores=args.placement.service) as service,
    ):
        for number, (domain, domain_id) in enumerate(DOMAINS.items()):
            ids = publish_quickstart(service, dataset, domain_id, f"bench-predict-{number}")
            results.append(measure(service, ids, image, domain, args))
            print(f"done: {domain}", flush=True)
        photos = hymenoptera(args.datasets)
        int8 = measure_int8_serving(service, photos, image, args) if photos else []
    print_tables(image, results)
    if int8:
        print_int8(int8)
    else:
        print(f"\nINT8 serving SKIPPED: hymenoptera not found under {args.datasets}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.predict", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the shared datasets folder")
    parser.add_argument(
        "--requests", type=int, default=200, help="sequential requests for the latency figures"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrent load")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="back-to-back rounds of sequential, 4-client, app-in-process and floor measurements per model",
    )
    parser.add_argument(
        "--service-cores",
        dest="placement",
        type=Placement.split,
        default=Placement.shared(),
        metavar="N",
        help="run the service on the first N cores and the clients on the rest (default: all share every core)",
    )
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
