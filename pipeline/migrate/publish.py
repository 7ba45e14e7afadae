"""`--train-and-publish`: train the target project and publish the result under each name the source publishes,
so prediction clients only change the endpoint (and key)."""

from __future__ import annotations

import time

from pipeline.migrate.api import ApiError, RemoteIteration, TrainingApi
from pipeline.migrate.report import ProjectReport

_POLL_SECONDS = 2.0


def published_names(api: TrainingApi, project_id: str) -> dict[str, str]:
    """Publish name -> the prediction resource it was published to, for the project's published iterations."""
    return {
        i.publish_name: i.original_publish_resource_id or ""
        for i in api.iterations(project_id)
        if i.publish_name
    }


def _trained(api: TrainingApi, project_id: str, timeout: float) -> RemoteIteration:
    """A new iteration trained now, or the newest completed one when nothing changed since it
    (BadRequestTrainingNotNeeded)."""
    try:
        iteration = api.train(project_id)
    except ApiError as exc:
        if exc.code != "BadRequestTrainingNotNeeded":
            raise
        done = [i for i in api.iterations(project_id) if i.status == "Completed"]
        if not done:
            raise
        return max(done, key=lambda i: i.trained_at or i.created)
    deadline = time.monotonic() + timeout
    while iteration.status not in ("Completed", "Failed"):
        if time.monotonic() > deadline:
            raise ApiError("TrainingTimeout", f"training did not finish within {timeout:.0f} s")
        time.sleep(_POLL_SECONDS)
        iteration = api.iteration(project_id, iteration.id)
    if iteration.status == "Failed":
        raise ApiError("TrainingFailed", iteration.training_error_details or "training failed")
    return iteration


def train_and_publish(
    source: TrainingApi,
    target: TrainingApi,
    source_id: str,
    target_id: str,
    report: ProjectReport,
    prediction_resource: str | None,
    timeout: float,
) -> None:
    """Publishes names the target does not publish yet; a problem is reported, never raised."""
    try:
        wanted = published_names(source, source_id)
        have = published_names(target, target_id)
        missing = {name: resource for name, resource in wanted.items() if name not in have}
        report.published = sorted(set(wanted) - set(missing))
        if not missing:
            return
        iteration = _trained(target, target_id, timeout)
        for name, resource in sorted(missing.items()):
            target.publish(target_id, iteration.id, name, prediction_resource or resource or "seer")
            report.published.append(name)
    except (ApiError, ValueError) as exc:  # ValueError: an answer that is not what the API describes
        report.fail(f"train and publish: {exc}")
