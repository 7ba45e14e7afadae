"""Publishing: an iteration is served by the Prediction API under a publish name chosen by the user."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from pipeline.core.errors import bad_request, not_found
from pipeline.core.limits import URL_SAFE_NAME
from pipeline.services.iterations import completed_iteration, get_iteration
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
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
) -> IterationRecord:
    """Serve a trained iteration under `publish_name`; with `overwrite`, take the name from another iteration."""
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
    store = IterationStore(account)
    holder = _holder(account, iteration.project_id, publish_name)
    if holder is not None and holder.id != iteration.id:
        if not overwrite:
            raise bad_request(
                "BadRequestInvalidPublishName",
                f"Iteration {holder.name} is already published as '{publish_name}'; pass overwrite=true.",
            )
        store.update(holder.project_id, holder.id, unpublished)
    published = store.update(iteration.project_id, iteration.id, published_as(publish_name, prediction_id))
    return published or iteration


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
    takes effect everywhere within `ttl` (Custom Vision's own publishing is not instantaneous either). Unknown names are not remembered, nor are names past `ttl`: a
    service that has seen many projects come and go holds only the recent ones."""

    def __init__(self, account: StorageAccount, ttl: float) -> None:
        self.account = account
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, PublishedTarget]] = {}
        self._lock = threading.Lock()

    def remembered(self, project_id: str, publish_name: str) -> PublishedTarget | None:
        """The target if it is remembered and fresh, without touching storage (the hot path skips a thread hop)."""
        with self._lock:
            cached = self._entries.get((project_id.lower(), publish_name))
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    def get(self, project_id: str, publish_name: str) -> PublishedTarget:
        remembered = self.remembered(project_id, publish_name)
        if remembered is not None:
            return remembered
        key = (project_id.lower(), publish_name)
        now = time.monotonic()
        target = published_iteration(self.account, project_id, publish_name)
        with self._lock:
            # expired entries go as new ones come, so the map holds only what was asked for within `ttl`
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self.ttl}
            self._entries[key] = (now, target)
        return target

    def __len__(self) -> int:
        return len(self._entries)
