"""One export job run: receive a message from the `exports` queue, convert the iteration's model for the platform
asked for, check its parity with the service on the iteration's training images, store the file and mark the
export Done, or Failed with the reason. Like the training job, the queue gives the retries: a job that crashes or
is killed leaves its message to reappear, and the run that sees it past the last try fails the export."""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import logging
import tempfile
from pathlib import Path

import numpy as np
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueMessage
from PIL import Image

from pipeline.contract.export_request import ExportMessage
from pipeline.core.settings import Settings, get_settings
from pipeline.core.vocabulary import ExportStatus
from pipeline.store import StorageAccount, get_storage
from pipeline.store.exports import ExportStore, export_blob_name
from pipeline.store.image_index import ALL
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.records import ExportRecord, export_key, utcnow
from pipeline.vision.preprocessing import preprocess, preprocess_full
from training_job import queue_job
from training_job.exports.onnx_format import onnx_runner
from training_job.exports.parity import ParityReport, check_parity
from training_job.exports.platform import ExportError, SourceModel, unknown_thresholds
from training_job.exports.registry import exporter
from training_job.queue_job import JobQueue, Work, configure_logging, run_once

log = logging.getLogger("training_job.exports")

MAX_PARITY_IMAGES = 200


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run one Seer export job from the exports queue.")
    parser.add_argument("--queue", help="queue to read (default: the SEER_EXPORT_QUEUE setting)")
    return parser


def parity_inputs(
    account: StorageAccount, project_id: str, iteration_id: str, source: SourceModel
) -> np.ndarray:
    """The iteration's training images (its training-set snapshot, at most MAX_PARITY_IMAGES), preprocessed as
    the service preprocesses them for this model."""
    images = ImageStore(account)
    ids = list(itertools.islice(images.snapshot(project_id, iteration_id).ids(ALL), MAX_PARITY_IMAGES))
    prepare = preprocess_full if source.is_detector else preprocess
    inputs = []
    for record in images.get_many(project_id, ids):
        try:
            data = images.read_blob(record.resized_blob)
        except ResourceNotFoundError:
            continue  # deleted since training
        with Image.open(io.BytesIO(data)) as picture:
            inputs.append(prepare(picture.convert("RGB"), source.input_size))
    if not inputs:
        raise ExportError(
            "The iteration's training images are gone; there is nothing to check the export on."
        )
    return np.stack(inputs)


def export(
    account: StorageAccount, request: ExportMessage, record: ExportRecord, workdir: Path
) -> tuple[str, ParityReport | None]:
    """Convert, check parity, upload under the record's blob name; returns the blob name and the parity figures
    (None: the export cannot run here, its platform checked the file instead). ExportError: it fails for good."""
    iteration = IterationStore(account).get(record.project_id, record.iteration_id)
    if iteration is None or not iteration.model_blob:
        raise ExportError("The iteration or its model is gone.")
    source = SourceModel.from_bytes(IterationStore(account).read_artefact(iteration.model_blob))
    inputs = parity_inputs(account, record.project_id, record.iteration_id, source)
    source = dataclasses.replace(source, calibration=inputs)
    exported = exporter(request.platform).export(source, request.flavor, request.precision, workdir)
    report = None
    if exported.runner is None:
        log.info("%s cannot run here; the platform checked the file itself", request.platform.value)
    else:
        model_file = workdir / "source.onnx"
        model_file.write_bytes(source.onnx_bytes)
        report = check_parity(
            onnx_runner(model_file),
            exported.runner,
            inputs,
            request.precision,
            source.is_detector,
            unknown_thresholds(source, exported),
            source.nms_iou,
        )
        log.info("%s", report.describe())
        if not report.passed:
            raise ParityFailure(report)
    blob = export_blob_name(record, exported.path.name)
    with exported.path.open("rb") as data:
        ExportStore(account).put_file(blob, data)
    return blob, report


class ParityFailure(ExportError):
    def __init__(self, report: ParityReport) -> None:
        super().__init__(f"The export does not agree with the service: {report.describe()}.")
        self.report = report


def finish(
    account: StorageAccount,
    message: ExportMessage,
    status: ExportStatus,
    *,
    reason: str | None = None,
    blob: str | None = None,
    report: ParityReport | None = None,
) -> None:
    """Record the outcome, only if the row still serves this request."""

    def apply(current: ExportRecord) -> ExportRecord | None:
        if current.request_id != message.request_id or current.status != ExportStatus.EXPORTING:
            return None
        return current.model_copy(
            update={
                "status": status,
                "reason": reason,
                "blob": blob,
                "parity": report.figures() if report else None,
                "finished": utcnow(),
            }
        )

    key = export_key(message.iteration_id, message.platform, message.flavor, message.precision)
    ExportStore(account).update(message.project_id, key, apply)


def _queue(settings: Settings, name: str) -> JobQueue:
    return JobQueue(name, settings.export_visibility_timeout_seconds, settings.export_max_attempts)


def _key(request: ExportMessage) -> str:
    return export_key(request.iteration_id, request.platform, request.flavor, request.precision)


def _work(account: StorageAccount) -> Work[ExportMessage, ExportRecord]:
    exports = ExportStore(account)

    def load(request: ExportMessage) -> ExportRecord | None:
        record = exports.get(request.project_id, _key(request))
        wanted = (
            record is not None
            and record.status == ExportStatus.EXPORTING
            and record.request_id == request.request_id
        )
        return record if wanted else None

    def run(request: ExportMessage, record: ExportRecord) -> None:
        with tempfile.TemporaryDirectory(prefix="seer-export-") as workdir:
            blob, report = export(account, request, record, Path(workdir))
        finish(account, request, ExportStatus.DONE, blob=blob, report=report)
        log.info("export %s done: %s", _key(request), blob)

    def fail(request: ExportMessage, record: ExportRecord, reason: str, error: Exception | None) -> None:
        figures = error.report if isinstance(error, ParityFailure) else None
        finish(account, request, ExportStatus.FAILED, reason=reason, report=figures)

    return Work(
        noun="export request",
        decode=ExportMessage.decode,
        describe=lambda request: f"export {_key(request)}",
        load=load,
        run=run,
        fail=fail,
    )


def handle(account: StorageAccount, settings: Settings, queue_name: str, message: QueueMessage) -> int:
    """Settle one export message (see training_job.queue_job)."""
    return queue_job.handle(account, _queue(settings, queue_name), message, _work(account))


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = get_args_parser().parse_args(argv)
    settings = get_settings()
    account = get_storage()
    return run_once(account, _queue(settings, args.queue or settings.export_queue), _work(account))
