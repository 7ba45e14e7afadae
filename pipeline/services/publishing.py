"""Publishing: an iteration is served by the Prediction API under a publish name chosen by the user."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.core.domains import domain_of
from pipeline.core.errors import bad_request, not_found
from pipeline.core.limits import URL_SAFE_NAME
from pipeline.core.vocabulary import ExportStatus
from pipeline.services.iterations import completed_iteration, get_iteration
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore
from pipeline.store.iterations import IterationStore, published_as, unpublished
from pipeline.store.records import IterationRecord


def _holder(account: StorageAccount, project_id: str, publish_name: str) -> IterationRecord | None:
    return next((i for i in IterationStore(account).list(project_id) if i.publish_name == publish_name), None)


def publish_iteration(
    account: StorageAccount,
    project_id: str,
    iteration_id: str,
    publish_name: str,
    prediction_id: str,
    overwrite: bool = False,
    precision: str | None = None,
) -> IterationRecord:
    """Serve a trained iteration under `publish_name`; with `overwrite`, take the name from another iteration;
    with Seer's `precision=INT8`, by its ONNX INT8 export (`int8_serving`)."""
    if not URL_SAFE_NAME.match(publish_name or ""):
        raise bad_request(
            "BadRequestInvalidPublishName",
            "publishName must be 1 to 64 letters, digits, '.', '-' or '_'.",
        )
    if not prediction_id:
        raise bad_request(
            "BadRequestInvalidPublishTarget", "predictionId (the prediction resource) is required."
        )
    iteration = completed_iteration(account, project_id, iteration_id)
    serving = (
        int8_serving(account, iteration) if _serving_precision(precision) == ExportPrecision.INT8 else None
    )
    store = IterationStore(account)
    holder = _holder(account, iteration.project_id, publish_name)
    if holder is not None and holder.id != iteration.id:
        if not overwrite:
            raise bad_request(
                "BadRequestInvalidPublishName",
                f"Iteration {holder.name} is already published as '{publish_name}'; pass overwrite=true.",
            )
        store.update(holder.project_id, holder.id, unpublished)
    published = store.update(
        iteration.project_id, iteration.id, published_as(publish_name, prediction_id, serving)
    )
    return published or iteration


def _serving_precision(precision: str | None) -> ExportPrecision:
    offered = (ExportPrecision.FP32, ExportPrecision.INT8)
    if precision is None:
        return ExportPrecision.FP32
    if precision not in offered:
        raise bad_request("BadRequestInvalid", f"precision must be one of {', '.join(offered)}.")
    return ExportPrecision(precision)


def int8_serving(account: StorageAccount, iteration: IterationRecord) -> tuple[str, str]:
    """(INT8, the blob) of the iteration's Done ONNX INT8 export: quantized by the export job on the iteration's
    training images and checked there (top-1 agreement on them, reported by GetExports). Offered for compact
    domains, whose models are the ones exported."""
    domain = domain_of(iteration.domain_id)
    if not domain.compact:
        raise bad_request(
            "BadRequestInvalid", f"INT8 serving is offered for compact domains; {domain.name} is not one."
        )
    done = [
        export
        for export in ExportStore(account).list(iteration.project_id, iteration.id)
        if export.platform == ExportPlatform.ONNX
        and export.precision == ExportPrecision.INT8
        and export.flavor in (None, ExportFlavor.ONNX12)
        and export.status == ExportStatus.DONE
        and export.blob
    ]
    if not done:
        raise bad_request(
            "BadRequestInvalid",
            f"Iteration {iteration.name} has no Done ONNX INT8 export: export it first "
            "(platform=ONNX, flavor=ONNX12, precision=INT8), then publish with precision=INT8.",
        )
    newest = max(done, key=lambda export: export.finished or export.requested)
    assert newest.blob is not None
    return ExportPrecision.INT8, newest.blob


def unpublish_iteration(account: StorageAccount, project_id: str, iteration_id: str) -> None:
    iteration = get_iteration(account, project_id, iteration_id)
    if not iteration.publish_name:
        raise bad_request("BadRequestIterationNotPublished", f"Iteration {iteration.name} is not published.")
    IterationStore(account).update(iteration.project_id, iteration.id, unpublished)


@dataclass(frozen=True)
class PublishedTarget:
    """What a prediction URL predicts with: the published iteration, and the project's unknownDetection."""

    iteration: IterationRecord
    unknown_detection: bool = False


def published_iteration(account: StorageAccount, project_id: str, publish_name: str) -> PublishedTarget:
    """The iteration a prediction URL names, or the Custom Vision 404."""
    project = get_project(account, project_id)
    iteration = _holder(account, project.id, publish_name)
    if iteration is None or not iteration.model_blob:
        raise not_found(
            "NotFoundIteration", f"No iteration of project {project.id} is published as '{publish_name}'."
        )
    return PublishedTarget(iteration, project.unknown_detection)


class PublishedIterations:
    """Prediction URL -> published iteration (and the project's unknownDetection), remembered for `ttl` seconds
    so the hot prediction path skips two storage round trips; a publish, an unpublish or a change of the setting
    takes effect everywhere within `ttl` (Custom Vision's own publishing is not instantaneous either), and at once
    in the app that made it, which `forget`s the project (without it, republishing a name served the old model
    for up to `ttl` from the very app that answered the publish). Unknown names are not remembered, nor are names
    past `ttl`: a service that has seen many projects come and go holds only the recent ones.

    Requests that find a name expired together share one read of it, and its answer or error: with 4 clients at
    once, each expiry used to send every request in flight to storage (General (compact) on 2 cores: 14 reads in
    10 s where 5 were due, 5 ms of CPU each)."""

    def __init__(self, account: StorageAccount, ttl: float) -> None:
        self.account = account
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, PublishedTarget]] = {}
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, str], Future[PublishedTarget]] = {}  # the read under way, by name
        self._stale: set[Future[PublishedTarget]] = set()  # reads under way when their project was forgotten

    def forget(self, project_id: str) -> None:
        """The project's publishing has just changed: drop what is remembered of its names, and let no read begun
        before now be remembered or shared with a request that comes after."""
        project = project_id.lower()
        with self._lock:
            self._entries = {key: entry for key, entry in self._entries.items() if key[0] != project}
            for key in [key for key in self._reads if key[0] == project]:
                self._stale.add(self._reads.pop(key))

    def _ended(self, key: tuple[str, str], read: Future[PublishedTarget]) -> bool:
        """Call under the lock when a read ends: whether it is still current (its project not forgotten since)."""
        if read in self._stale:
            self._stale.discard(read)
            return False
        del self._reads[key]
        return True

    def remembered(self, project_id: str, publish_name: str) -> PublishedTarget | None:
        """The target if it is remembered and fresh, without touching storage (the hot path skips a thread hop)."""
        with self._lock:
            cached = self._entries.get((project_id.lower(), publish_name))
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    def get(self, project_id: str, publish_name: str) -> PublishedTarget:
        """The target, read from storage when it is not remembered, or the Custom Vision 404."""
        remembered = self.remembered(project_id, publish_name)
        if remembered is not None:
            return remembered
        key = (project_id.lower(), publish_name)
        with self._lock:
            read = self._reads.get(key)
            leading = read is None
            if read is None:
                read = self._reads[key] = Future()
        if not leading:
            return read.result()  # the answer, or the error, of the read already under way
        now = time.monotonic()
        try:
            target = published_iteration(self.account, project_id, publish_name)
        except BaseException as error:
            with self._lock:
                self._ended(key, read)
            read.set_exception(error)
            raise
        with self._lock:
            # expired entries go as new ones come, so the map holds only what was asked for within `ttl`
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self.ttl}
            if self._ended(key, read):
                self._entries[key] = (now, target)
        read.set_result(target)
        return target

    def __len__(self) -> int:
        return len(self._entries)
