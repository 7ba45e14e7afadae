"""Exporting an iteration's model (ExportIteration, GetExports, GetArtifact): Custom Vision's rules, the Export
row, and the message on the `exports` queue that an export job (training_job/exports) picks up. The export itself
never runs inside a request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from pipeline.contract.export_request import ExportMessage
from pipeline.contract.exports import SUPPORTED, ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.core.errors import CustomVisionError, bad_request, not_trained
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ExportStatus, IterationStatus, new_id, parse_choice
from pipeline.services.iterations import get_iteration
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.exports import CONTAINER, ExportStore
from pipeline.store.records import ExportRecord, IterationRecord, utcnow

INVALID = "BadRequestExportValidationFailed"


@dataclass(frozen=True)
class ExportKind:
    platform: ExportPlatform
    flavor: ExportFlavor | None
    precision: ExportPrecision


def export_kind(platform: str | None, flavor: str | None, precision: str | None) -> ExportKind:
    """The platform, flavor (the platform's first when none is named) and precision (FP32 by default) asked for,
    or the Custom Vision error for an unknown one or a combination Seer does not export."""
    if not platform:
        raise bad_request(INVALID, "platform is required.")
    chosen = parse_choice(ExportPlatform, platform, "platform", code=INVALID)
    spec = SUPPORTED.get(chosen)
    if spec is None:
        exported = ", ".join(p.value for p in SUPPORTED)
        raise bad_request(
            "BadRequestProjectUnsupportedExportPlatform",
            f"Seer does not export to {chosen.value}; it exports to {exported}.",
        )
    named = parse_choice(ExportFlavor, flavor, "flavor", code=INVALID) if flavor else None
    if named is None:
        named = spec.flavors[0]
    elif named not in spec.flavors:
        flavors = ", ".join(f.value for f in spec.flavors if f) or "none"
        raise bad_request(INVALID, f"{chosen.value} has no flavor {named.value}; its flavors: {flavors}.")
    level = parse_choice(ExportPrecision, precision, "precision", default=ExportPrecision.FP32, code=INVALID)
    if level not in spec.precisions:
        levels = ", ".join(p.value for p in spec.precisions)
        raise bad_request(INVALID, f"{chosen.value} exports precisions {levels}, not {level.value}.")
    return ExportKind(chosen, named, level)


def _exportable(account: StorageAccount, project_id: str, iteration_id: str) -> IterationRecord:
    iteration = get_iteration(account, project_id, iteration_id)
    if iteration.status == IterationStatus.TRAINING:
        raise bad_request("BadRequestExportWhileTraining", f"Iteration {iteration.name} is still training.")
    if iteration.status != IterationStatus.COMPLETED or not iteration.model_blob:
        raise not_trained(f"Iteration {iteration.name} has no trained model to export ({iteration.status}).")
    return iteration


def request_export(
    account: StorageAccount,
    settings: Settings,
    project_id: str,
    iteration_id: str,
    platform: str | None,
    flavor: str | None,
    precision: str | None,
) -> ExportRecord:
    """Mark the export Exporting and queue it; a Done or Failed one of the same kind is exported again."""
    kind = export_kind(platform, flavor, precision)
    iteration = _exportable(account, project_id, iteration_id)
    store = ExportStore(account)
    fresh = ExportRecord(
        project_id=iteration.project_id,
        iteration_id=iteration.id,
        platform=kind.platform,
        flavor=kind.flavor,
        precision=kind.precision,
        request_id=new_id(),
    )

    def restart(current: ExportRecord) -> ExportRecord:
        if current.status == ExportStatus.EXPORTING:
            raise bad_request(
                "BadRequestExportAlreadyInProgress", f"This {kind.platform.value} export is still running."
            )
        return fresh.model_copy(update={"blob": current.blob})

    # A new row, or an ETag-guarded rewrite of a finished one: two requests at once queue one export.
    if not store.create(fresh) and store.update(fresh.project_id, fresh.row_key, restart) is None:
        store.create(fresh)
    try:
        account.enqueue(settings.export_queue, export_message(fresh).encode())
    except Exception:
        unqueued = "The export could not be queued."
        store.update(
            fresh.project_id,
            fresh.row_key,
            lambda r: _failed(r, unqueued) if r.request_id == fresh.request_id else None,
        )
        raise
    return fresh


def export_message(record: ExportRecord) -> ExportMessage:
    """The export job's request for the run that `record` awaits."""
    return ExportMessage(
        project_id=record.project_id,
        iteration_id=record.iteration_id,
        platform=record.platform,
        flavor=record.flavor,
        precision=record.precision,
        request_id=record.request_id,
    )


def _failed(record: ExportRecord, reason: str) -> ExportRecord:
    return record.model_copy(
        update={"status": ExportStatus.FAILED, "reason": reason, "blob": None, "finished": utcnow()}
    )


def list_exports(account: StorageAccount, project_id: str, iteration_id: str) -> list[ExportRecord]:
    iteration = get_iteration(account, project_id, iteration_id)
    return ExportStore(account).list(iteration.project_id, iteration.id)


def download_url(account: StorageAccount, record: ExportRecord) -> str | None:
    """A time-limited read-only URL of a Done export's file."""
    if record.status != ExportStatus.DONE or not record.blob:
        return None
    return account.read_url(CONTAINER, record.blob)


def artifact(account: StorageAccount, project_id: str, path: str) -> Iterator[bytes]:
    """GetArtifact: a Done export's file by its path below the project (`{iteration}/{kind}/{file}`, as the
    blob is named); anything else is an invalid artifact URI."""
    project = get_project(account, project_id)
    invalid = bad_request("BadRequestInvalidArtifactUri", f"{path!r} is not an artifact of this project.")
    iteration_id = path.split("/", 1)[0]
    if not iteration_id:
        raise invalid
    store = ExportStore(account)
    wanted = f"{project.id}/{path}"
    found = [
        r for r in store.list(project.id, iteration_id) if r.status == ExportStatus.DONE and r.blob == wanted
    ]
    if not found:
        raise invalid
    try:
        return store.stream(wanted)
    except ResourceNotFoundError as error:
        raise CustomVisionError(404, "NotFound", f"Artifact {path!r} is gone.") from error
