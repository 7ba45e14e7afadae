"""Storage at Custom Vision's limit: what the API's image calls cost as one project grows to 100,000 images.

    .venv/bin/python -m bench.scale [--sizes 1000,10000,100000] [--repeats 7] [--uploads 3] [--loads 3]

One project on a fresh in-memory Azurite (devhost.azurite) grows to each size in turn (never refilled):
  - tags "a" and "b" get 250 real tiny images each, uploaded through the API once, so loading the training set is
    the same work at every size; the rest is filler written straight through the storage layer (bench.scale_fill:
    image rows in entity-group transactions, indexed once per fill, no blobs), a third
    untagged and the rest spread over tags "c".."j";
  - at each size the project is filled to `size - uploads x 64`, then --uploads upload batches (64 distinct tiny
    PNGs tagged "c", CreateImagesFromFiles) bring it to exactly `size`; then GetImages (take 50: the first page,
    and skip 5,000 or the last page of a smaller project), GetImageCount, GetTaggedImageCount (tagIds=a) and
    GetTags (with counts) run --repeats times, and `training_job.data.load_training_data` for an iteration of
    tags a and b runs --loads times in this process (the job's step, not an HTTP call).
Every API call goes over HTTP to the real app (`create_app`) served by uvicorn on loopback in this process; the
app's StorageAccount counts the requests it sends to Azurite (bench.storage_ops), so each call's storage operations
are printed beside its latency (median and max over the repeats). Diagnostics: Azurite's own latency for one point
read and for a one-row range query on the images table, called directly; its peak resident memory; the machine's
load; whether the partition carries its index mark `~v`; and with --reconcile, at the end, what one
`ImageStore.reconcile` of the full project costs (the sweeper's step, and a fresh process's first use of the index
while the mark is missing).
Target (issue 12): at the largest size every call within 2x of its median at the smallest, and the upload batch at
most 2 s (median). A miss is reported, not an error. The table is also written to bench/results/scale.txt.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from azure.core.exceptions import ResourceNotFoundError

from bench.common import ROOT, TRAINING, machine, ok, rss_mib
from bench.scale_fill import fill, tiny_png
from bench.storage_ops import RequestCounter
from devhost.azurite import Azurite, Ports
from devhost.http_server import HttpServer
from devhost.ports import free_port
from pipeline.api.app import create_app
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount, StoragePolicy
from pipeline.store.image_index import VERSION_ROW
from pipeline.store.images import TABLE, ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord
from training_job.data import load_training_data

log = logging.getLogger("bench.scale")

TRAINING_KEY = "bench-training-key"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
BATCH = 64  # images per upload batch (Custom Vision's limit)
TRAINING_IMAGES = 250  # per training tag, at every size
SKIP = 5_000
TAKE = 50
RATIO_TARGET = 2.0
UPLOAD_TARGET_SECONDS = 2.0
AZURITE_HEAP_MIB = 8192
RESULTS = ROOT / "bench" / "results" / "scale.txt"
UPLOAD_CALL = "upload batch (64 images, tag c)"
TRAINING_CALL = "load training set (a+b, 500)"


@dataclass(frozen=True)
class Sample:
    seconds: float
    operations: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.operations.values())


@dataclass
class Figures:
    """One call's samples at one size."""

    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def worst(self) -> float:
        return max(s.seconds for s in self.samples)

    @property
    def operations(self) -> str:
        totals = sorted(s.total for s in self.samples)
        return str(totals[0]) if totals[0] == totals[-1] else f"{totals[0]}-{totals[-1]}"

    def kinds(self) -> str:
        """The median sample's operations by kind."""
        middle = sorted(self.samples, key=lambda s: s.total)[len(self.samples) // 2]
        return ", ".join(f"{kind} {n}" for kind, n in sorted(middle.operations.items()))


@dataclass
class Size:
    images: int
    calls: dict[str, Figures] = field(default_factory=dict)
    storage: dict[str, float] = field(default_factory=dict)  # Azurite's own latencies, seconds
    azurite_mib: float = 0.0
    available_mib: float = 0.0
    fill_seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average as measuring began and ended
    marked: bool = False  # the partition's index version row `~v` exists


class Bench:
    """The project, the served app, and the clients the measurements use."""

    def __init__(
        self, http: httpx.Client, account: StorageAccount, counter: RequestCounter, plain: StorageAccount
    ) -> None:
        self.http = http
        self.account = account  # the app's: its requests are counted
        self.counter = counter
        self.plain = plain  # filling and diagnostics, not counted
        self.project_id = ""
        self.tags: dict[str, str] = {}
        self.uploaded = 0
        self.filled = 0
        self.iteration: IterationRecord | None = None

    def measure(self, call: Callable[[], object], repeats: int) -> Figures:
        figures = Figures()
        for _ in range(repeats):
            self.counter.take()
            started = time.perf_counter()
            call()
            seconds = time.perf_counter() - started
            figures.samples.append(Sample(seconds, self.counter.take()))
        return figures

    def create_project(self) -> None:
        name = f"bench-scale-{new_id()[:8]}"
        self.project_id = ok(self.http.post("/projects", params={"name": name}))["id"]
        for tag in "abcdefghij":
            created = ok(self.http.post(f"/projects/{self.project_id}/tags", params={"name": tag}))
            self.tags[tag] = created["id"]

    def upload(self, tag: str, count: int) -> None:
        """`count` new distinct images tagged `tag`, in one CreateImagesFromFiles request."""
        seeds = range(self.uploaded, self.uploaded + count)
        self.uploaded += count
        body = {
            "images": [
                {"name": f"{seed}.png", "contents": base64.b64encode(tiny_png(seed)).decode()}
                for seed in seeds
            ],
            "tagIds": [self.tags[tag]],
        }
        summary = ok(self.http.post(f"/projects/{self.project_id}/images/files", json=body))
        statuses = Counter(image["status"] for image in summary["images"])
        if statuses != Counter({"OK": count}):
            raise RuntimeError(f"upload batch: {dict(statuses)}")

    def upload_training_images(self) -> None:
        for tag in "ab":
            for start in range(0, TRAINING_IMAGES, BATCH):
                self.upload(tag, min(BATCH, TRAINING_IMAGES - start))
        project = ok(self.http.get(f"/projects/{self.project_id}"))
        self.iteration = IterationStore(self.plain).create(
            IterationRecord(
                id=new_id(),
                project_id=self.project_id,
                name="bench.scale",
                domain_id=project["settings"]["domainId"],
                selected_tag_ids=[self.tags["a"], self.tags["b"]],
                training_set_fingerprint="bench.scale",
            )
        )

    def count(self) -> int:
        return ok(self.http.get(f"/projects/{self.project_id}/images/count"))

    def grow_to(self, size: Size, uploads: int) -> None:
        """Fill to `size - uploads x 64` through storage, then measure the upload batches that bring it to `size`."""
        missing = size.images - uploads * BATCH - self.count()
        if missing < 0:
            raise SystemExit(
                f"{size.images:,} images are fewer than this project already holds plus the uploads"
            )
        started = time.perf_counter()
        others = [self.tags[name] for name in "cdefghij"]
        fill(self.plain, self.project_id, missing, others, self.filled)
        self.filled += missing
        size.fill_seconds = time.perf_counter() - started
        size.calls[UPLOAD_CALL] = self.measure(lambda: self.upload("c", BATCH), uploads)
        if self.count() != size.images:
            raise RuntimeError(f"the project holds {self.count()} images, not {size.images}")

    def measure_reads(self, size: Size, repeats: int, loads: int) -> None:
        images = f"/projects/{self.project_id}/images"
        skip = min(SKIP, size.images - TAKE)
        reads: dict[str, Callable[[], object]] = {
            f"GetImages take {TAKE}, first page": lambda: self._page(images, {"take": TAKE}),
            f"GetImages take {TAKE}, skip {SKIP:,}*": lambda: self._page(
                images, {"take": TAKE, "skip": skip}
            ),
            "GetImageCount": lambda: ok(self.http.get(f"{images}/count")),
            "GetTaggedImageCount tagIds=a": lambda: ok(
                self.http.get(f"{images}/tagged/count", params={"tagIds": self.tags["a"]})
            ),
            "GetTags (with counts)": lambda: ok(self.http.get(f"/projects/{self.project_id}/tags")),
        }
        for label, call in reads.items():
            size.calls[label] = self.measure(call, repeats)
        size.calls[TRAINING_CALL] = self.measure(self._load_training_set, loads)

    def _page(self, path: str, params: dict[str, int]) -> None:
        page = ok(self.http.get(path, params=params))
        if len(page) != TAKE:
            raise RuntimeError(f"GetImages {params}: {len(page)} images, not {TAKE}")

    def _load_training_set(self) -> None:
        assert self.iteration is not None
        data = load_training_data(self.account, self.iteration)
        if len(data.images) != 2 * TRAINING_IMAGES or len(data.tags) != 2:
            raise RuntimeError(f"training set: {len(data.images)} images, {len(data.tags)} tags")

    def storage_diagnostics(self, size: Size, repeats: int) -> None:
        """Azurite's own cost without the app (one point read, one one-row range query on the images table), and
        whether the partition carries its index mark."""
        table = self.plain.table(TABLE)
        newest = ok(self.http.get(f"/projects/{self.project_id}/images", params={"take": 1}))[0]["id"]

        def point_read() -> None:
            table.get_entity(self.project_id, newest)

        def range_query() -> None:
            rows = table.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": self.project_id, "low": newest, "high": newest + "~"},
                select=["RowKey"],
            )
            next(iter(rows))

        for label, call in (("point read", point_read), ("one-row range query", range_query)):
            size.storage[label] = self.measure(call, repeats).median
        try:
            size.marked = bool(table.get_entity(self.project_id, VERSION_ROW))
        except ResourceNotFoundError:
            size.marked = False

    def reconcile(self) -> Figures:
        """What the first use of the index costs in a process that has not seen the project while `~v` is missing
        (ImageStore.index reconciles then), and what the sweeper's step costs: one ImageStore.reconcile."""
        return self.measure(lambda: ImageStore(self.account).reconcile(self.project_id), 1)


def _available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def _azurite() -> Iterator[Azurite]:
    """A fresh in-memory Azurite whose Node heap may grow to AZURITE_HEAP_MIB (its default, 4 GiB here, is about
    what 100,000 images take)."""
    os.environ.setdefault("NODE_OPTIONS", f"--max-old-space-size={AZURITE_HEAP_MIB}")
    azurite = Azurite(Ports.free())  # not quiet: if it runs out of memory, Node says so on stderr
    azurite.start()
    try:
        yield azurite
    finally:
        azurite.stop()


@contextlib.contextmanager
def _served_bench(connection_string: str) -> Iterator[Bench]:
    """The app on a counted StorageAccount, served by uvicorn on loopback in this process."""
    settings = Settings(storage_connection_string=connection_string, training_key=TRAINING_KEY)
    policy = StoragePolicy.from_settings(settings)
    counter = RequestCounter()
    account = StorageAccount(connection_string, policy, raw_request_hook=counter)
    server = HttpServer(create_app(settings, account), host="127.0.0.1", port=free_port(), route_prefix="")
    server.start()
    try:
        headers = {"Training-Key": TRAINING_KEY}
        with httpx.Client(base_url=f"{server.local_url}{TRAINING}", headers=headers, timeout=600) as http:
            yield Bench(http, account, counter, StorageAccount(connection_string, policy))
    finally:
        server.request_stop()
        server.join()


# --- the report ---------------------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(sizes: list[Size], repeats: int, uploads: int, loads: int) -> list[str]:
    first, last = sizes[0], sizes[-1]
    lines = [
        f"machine: {machine()}",
        f"storage: Azurite in memory on loopback (NODE_OPTIONS={os.environ.get('NODE_OPTIONS', '')}); the app"
        " served by uvicorn in the bench's process",
        f"repeats: {repeats} per read, {uploads} upload batches, {loads} training-set loads per size;"
        " ms = median / max, ops = storage requests per call (min-max over the repeats)",
        "",
    ]
    labels = list(first.calls)
    width = max(len(label) for label in labels)
    header = f"{'call':<{width}}" + "".join(f" | {f'{s.images:,} images':^24}" for s in sizes)
    lines += [header, f"{'':<{width}}" + " | median ms  max ms    ops" * len(sizes)]
    for label in labels:
        row = f"{label:<{width}}"
        for s in sizes:
            f = s.calls[label]
            row += f" | {_ms(f.median):>9} {_ms(f.worst):>7} {f.operations:>6}"
        lines.append(row)
    skip_note = ", ".join(f"{min(SKIP, s.images - TAKE):,} at {s.images:,}" for s in sizes)
    lines += [f"* skip = min(5,000, images - 50): {skip_note}", ""]
    lines.append(
        f"Azurite itself (direct SDK calls on the images table, median of {repeats}), and the machine:"
    )
    for label in first.storage:
        lines.append(_diagnostic(label, sizes, lambda s, label=label: f"{_ms(s.storage[label])} ms"))
    lines += [
        _diagnostic("Azurite peak RSS", sizes, lambda s: f"{s.azurite_mib:.0f} MiB"),
        _diagnostic("MemAvailable", sizes, lambda s: f"{s.available_mib:.0f} MiB"),
        _diagnostic("fill time", sizes, lambda s: f"{s.fill_seconds:.0f} s"),
        _diagnostic("load average", sizes, lambda s: f"{s.load[0]:.1f}-{s.load[1]:.1f}"),
        _diagnostic("index mark ~v", sizes, lambda s: "present" if s.marked else "missing"),
    ]
    lines.append("")
    if len(sizes) > 1:
        lines += _targets(first, last, labels, width)
    lines.append("")
    lines.append(f"storage operations by kind at {last.images:,} (the median repeat):")
    lines += [f"  {label:<{width}}  {last.calls[label].kinds()}" for label in labels]
    return lines


def _diagnostic(label: str, sizes: list[Size], cell: Callable[[Size], str]) -> str:
    return f"  {label:<20}" + "".join(f"  {cell(s):>10} at {s.images:,}" for s in sizes)


def _targets(first: Size, last: Size, labels: list[str], width: int) -> list[str]:
    lines = [
        f"target: at {last.images:,} within {RATIO_TARGET:g}x of {first.images:,} (medians); upload batch at "
        f"most {UPLOAD_TARGET_SECONDS:g} s"
    ]
    missed = []
    for label in labels:
        before, after = first.calls[label].median, last.calls[label].median
        ratio = after / before
        met = ratio <= RATIO_TARGET and (label != UPLOAD_CALL or after <= UPLOAD_TARGET_SECONDS)
        extra = f", {after:.2f} s" if label == UPLOAD_CALL else ""
        lines.append(f"  {label:<{width}}  {ratio:5.2f}x{extra}  {'meets' if met else 'MISSES'}")
        if not met:
            missed.append(label)
    lines.append(f"  {'all targets met' if not missed else f'{len(missed)} missed: ' + '; '.join(missed)}")
    return lines


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted(int(n) for n in text.split(",")),
        default=list(DEFAULT_SIZES),
        help="project sizes, comma-separated (default 1000,10000,100000)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="repeats of each read call per size")
    parser.add_argument("--uploads", type=int, default=3, help="64-image upload batches per size")
    parser.add_argument("--loads", type=int, default=3, help="training-set loads per size")
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="at the end, time one reconcile of the project (a fresh process's first use while `~v` is missing)",
    )
    return parser


def _save(lines: list[str]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    smallest = 2 * TRAINING_IMAGES + args.uploads * BATCH
    if args.sizes[0] < smallest:
        raise SystemExit(
            f"the smallest size must hold the training images and the uploads: {smallest} or more"
        )
    sizes: list[Size] = []
    with _azurite() as azurite, _served_bench(azurite.connection_string) as bench:
        bench.create_project()
        bench.upload_training_images()
        for images in args.sizes:
            size = Size(images)
            log.info("growing the project to %d images", images)
            bench.grow_to(size, args.uploads)
            log.info("measuring at %d images", images)
            started = os.getloadavg()[0]
            bench.measure_reads(size, args.repeats, args.loads)
            bench.storage_diagnostics(size, args.repeats)
            size.load = (started, os.getloadavg()[0])
            size.azurite_mib = rss_mib(azurite.pid or 0, "VmHWM")
            size.available_mib = _available_mib()
            sizes.append(size)
            _save(report(sizes, args.repeats, args.uploads, args.loads))  # what is measured so far
        lines = report(sizes, args.repeats, args.uploads, args.loads)
        if args.reconcile:
            log.info("reconciling the project")
            reconciled = bench.reconcile()
            lines += [
                "",
                f"reconcile at {sizes[-1].images:,} (what a fresh process's first index use costs while ~v is"
                f" missing, and the sweeper's step): {reconciled.median:.1f} s, {reconciled.operations} ops"
                f" ({reconciled.kinds()})",
            ]
    _save(lines)
    print("\n".join(lines))
    print(f"\n(written to {RESULTS.relative_to(ROOT)})")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
