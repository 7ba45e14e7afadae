"""Mixed load against the running service: prediction, upload and listing at once, with a slow image host in the mix.

    .venv/bin/python -m bench.load [--clients 16 64] [--seconds 30] [--slow-fetches 40] [--slow-seconds 5]

The service is started as the README's run command starts it (scripts/run.sh) on a fresh Azurite. A classifier is
trained on generated pictures (two tags, 8 images each; no datasets needed) and published. Then, for each client
count, for --seconds:
  - that many clients each cycle through predict (classify nostore, a 640x480 JPEG), upload (one new generated
    320x240 JPEG per request, CreateImagesFromData into a scratch project) and list (GetProjects, then GetImages
    of the trained project, alternately);
  - --slow-fetches more clients keep prediction-by-URL requests in flight against a loopback host that sends its
    image only after --slow-seconds (the "40 slow URL fetches" of issue 10);
  - the resident memory of the service's process tree (the local host and any training job it runs), summed
    from /proc every 100 ms; the peak is reported.
Every client is an httpx client in this process, sharing the machine's cores with the service.
Targets (issue 10): no 5xx, listing p99 under 500 ms, peak RSS under 2 GiB.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import io
import itertools
import random
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

from bench.common import (
    TRAINING,
    MemorySampler,
    Service,
    cmdline,
    descendants,
    machine,
    ok,
    rss_mib,
    seer_service,
)
from bench.train import train

PREDICTION = "/customvision/v3.0/prediction"
PUBLISHED = "bench"
LISTING_P99_TARGET = 0.5
RSS_TARGET_MIB = 2048


def picture(seed: int, size: tuple[int, int] = (320, 240), base: tuple[int, int, int] | None = None) -> bytes:
    """A distinct JPEG: a background colour (`base`, or random) with a few random shapes."""
    rng = random.Random(seed)
    colour = base or (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(size[0] - 40), rng.randrange(size[1] - 40)
        shade = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse([x, y, x + rng.randrange(10, 40), y + rng.randrange(10, 40)], fill=shade)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@contextlib.contextmanager
def slow_image_host(image: bytes, delay: float) -> Iterator[str]:
    """A loopback server that answers every GET with `image` after `delay` seconds; yields the image's URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.jpg"
    finally:
        server.shutdown()
        server.server_close()


class TreeMemory(MemorySampler):
    """The peak of the summed resident memory (VmRSS) of a process and all its descendants."""

    def __init__(self, root_pid: int, interval: float = 0.1) -> None:
        super().__init__(interval)
        self.root_pid = root_pid
        self.peak_mib = 0.0

    def sample(self) -> None:
        tree = [self.root_pid, *descendants(self.root_pid)]
        self.peak_mib = max(self.peak_mib, sum(rss_mib(pid) for pid in tree))

    def wait_for_jobs(self, timeout: float = 120.0) -> None:
        """Wait until no training job runs under the service (one that is still exiting would count as load)."""
        deadline = time.monotonic() + timeout
        while any(b"training_job" in cmdline(pid) for pid in descendants(self.root_pid)):
            if time.monotonic() > deadline:
                raise RuntimeError("a training job is still running")
            time.sleep(0.2)


@dataclass
class Tally:
    """Latencies and answers per kind of request, shared by every client thread."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, answer: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.answers[kind][answer] += 1


def timed(tally: Tally, kind: str, call: Callable[[], httpx.Response]) -> None:
    started = time.perf_counter()
    try:
        answer = str(call().status_code)
    except httpx.HTTPError as error:
        answer = type(error).__name__
    tally.record(kind, answer, time.perf_counter() - started)


@dataclass(frozen=True)
class Target:
    """What the clients work on: the published project, a scratch project for uploads, the images to send."""

    project_id: str
    scratch_id: str
    request_image: bytes
    slow_url: str


def mixed_client(service: Service, target: Target, tally: Tally, deadline: float, number: int) -> None:
    predict = f"{PREDICTION}/{target.project_id}/classify/iterations/{PUBLISHED}/image/nostore"
    listings = itertools.cycle(
        [f"{TRAINING}/projects", f"{TRAINING}/projects/{target.project_id}/images?take=50"]
    )
    seeds = itertools.count(number * 1_000_000)
    with service.client(timeout=60) as client:
        for kind in itertools.cycle(["predict", "upload", "list"]):
            if time.perf_counter() >= deadline:
                return
            if kind == "predict":
                timed(tally, kind, lambda: client.post(predict, content=target.request_image))
            elif kind == "upload":
                body = picture(next(seeds))
                timed(
                    tally,
                    kind,
                    lambda body=body: client.post(
                        f"{TRAINING}/projects/{target.scratch_id}/images", content=body
                    ),
                )
            else:
                url = next(listings)
                timed(tally, kind, lambda url=url: client.get(url))


def slow_client(service: Service, target: Target, tally: Tally, deadline: float) -> None:
    predict = f"{PREDICTION}/{target.project_id}/classify/iterations/{PUBLISHED}/url/nostore"
    with service.client(timeout=60) as client:
        while time.perf_counter() < deadline:
            timed(tally, "slow url", lambda: client.post(predict, json={"url": target.slow_url}))


@dataclass(frozen=True)
class Run:
    clients: int
    seconds: float
    tally: Tally
    peak_mib: float


def run_load(service: Service, target: Target, clients: int, args: argparse.Namespace) -> Run:
    tally = Tally()
    deadline = time.perf_counter() + args.seconds
    threads = [
        threading.Thread(target=mixed_client, args=(service, target, tally, deadline, n))
        for n in range(clients)
    ]
    threads += [
        threading.Thread(target=slow_client, args=(service, target, tally, deadline))
        for _ in range(args.slow_fetches)
    ]
    memory = TreeMemory(service.pid)
    memory.wait_for_jobs()
    with memory:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    return Run(clients, seconds, tally, memory.peak_mib)


def prepare(service: Service, slow_url: str) -> Target:
    """Train and publish a two-tag classifier on generated pictures; make the scratch project for uploads."""
    with service.client(timeout=600) as client:
        project = ok(client.post(f"{TRAINING}/projects", params={"name": "bench-load"}))
        for tag, colour in (("warm", (200, 60, 30)), ("cool", (30, 80, 200))):
            tag_id = ok(client.post(f"{TRAINING}/projects/{project['id']}/tags", params={"name": tag}))["id"]
            for seed in range(8):
                image = picture(seed + (100 if tag == "cool" else 0), base=colour)
                ok(
                    client.post(
                        f"{TRAINING}/projects/{project['id']}/images",
                        params={"tagIds": tag_id},
                        content=image,
                    )
                )
        iteration, _, _ = train(client, project["id"], "Regular")
        ok(
            client.post(
                f"{TRAINING}/projects/{project['id']}/iterations/{iteration['id']}/publish",
                params={"publishName": PUBLISHED, "predictionId": "bench"},
            )
        )
        scratch = ok(client.post(f"{TRAINING}/projects", params={"name": "bench-load-uploads"}))
    return Target(project["id"], scratch["id"], picture(7, size=(640, 480)), slow_url)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f}"


def print_tables(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        f"\n{args.seconds:.0f} s per run; {args.slow_fetches} extra clients keep prediction-by-URL requests in flight "
        f"to a host that answers after {args.slow_seconds:.0f} s\n"
    )
    print("| clients | kind | requests | req/s | p50 ms | p99 ms | answers |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        for kind in ("predict", "upload", "list", "slow url"):
            values = run.tally.latencies.get(kind, [])
            if not values:
                continue
            answers = ", ".join(f"{code}: {n}" for code, n in sorted(run.tally.answers[kind].items()))
            print(
                f"| {run.clients} | {kind} | {len(values)} | {len(values) / run.seconds:.1f} | "
                f"{ms(statistics.median(values))} | {ms(percentile(values, 0.99))} | {answers} |"
            )
    print("\n| clients | req/s (all) | 5xx | other failures | listing p99 ms | peak RSS MiB | targets met |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        answers = sum((counter for counter in run.tally.answers.values()), Counter())
        total = sum(answers.values())
        server_errors = sum(n for code, n in answers.items() if code.startswith("5"))
        failures = sum(n for code, n in answers.items() if not code.isdigit())
        listing_p99 = percentile(run.tally.latencies["list"], 0.99)
        met = (
            server_errors == 0
            and failures == 0
            and listing_p99 < LISTING_P99_TARGET
            and run.peak_mib < RSS_TARGET_MIB
        )
        print(
            f"| {run.clients} | {total / run.seconds:.1f} | {server_errors} | {failures} | {ms(listing_p99)} | "
            f"{run.peak_mib:.0f} | {'yes' if met else 'NO'} |"
        )


def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    runs = []
    slow_image = picture(3, size=(640, 480))
    with (
        tempfile.TemporaryDirectory(prefix="seer-bench-") as logs,
        seer_service(Path(logs)) as service,
        slow_image_host(slow_image, args.slow_seconds) as slow_url,
    ):
        target = prepare(service, slow_url)
        print("trained and published; loading", flush=True)
        for clients in args.clients:
            runs.append(run_load(service, target, clients, args))
            print(f"done: {clients} clients", flush=True)
    print_tables(runs, args)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[16, 64], help="mixed clients, one run each"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each run")
    parser.add_argument(
        "--slow-fetches", type=int, default=40, help="prediction-by-URL requests kept in flight"
    )
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="how long the slow image host waits")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
