"""The blob drop folder: `uploads/{project}/{tag}/{file}` (or `uploads/{project}/{file}`, untagged) becomes a
training image, stored by the same service call as an API upload.

`{project}` is a project id or exact name; `{tag}` a tag name (any case), created when missing. A file that cannot
become an image (bad bytes, unknown project, wrong folder depth, ...) is moved to `uploads/rejected/{name}` with a
`{name}.reason.json` beside it, and the trigger succeeds: retrying cannot fix bad input. Only failures that a retry
might fix (storage errors) propagate, so the Functions host retries and finally poisons the blob.

Processing the same blob again is harmless: the content hash makes it OKDuplicate, and its tag is added if missing.
Successfully ingested files stay in `uploads` (the host's blob receipts keep them from being processed again).
"""

from __future__ import annotations

import json
import logging
import threading

from pipeline.errors import CustomVisionError, bad_request, project_not_found
from pipeline.images import CreateResult, NewImage, create_images
from pipeline.projects import find_or_create_tag, find_project
from pipeline.settings import Settings, get_settings
from pipeline.store import StorageAccount, get_storage
from pipeline.store.images import UPLOADS_CONTAINER, UploadStore
from pipeline.wire.images import ImageCreateStatus

log = logging.getLogger(__name__)

REJECTED_PREFIX = "rejected/"

# find_or_create_tag is check-then-create; serialising it here stops concurrent triggers in one process from
# creating the same new tag twice (separate processes can still race; the fix belongs in pipeline.projects).
_tag_lock = threading.Lock()


class IngestRetry(RuntimeError):
    """Ingestion failed for a reason a retry may fix; raised so the host retries the blob."""


def blob_name(blob_path: str) -> str:
    """The name inside the container: the real host passes `uploads/{name}`, the local host may pass `{name}`."""
    prefix = f"{UPLOADS_CONTAINER}/"
    return blob_path[len(prefix) :] if blob_path.startswith(prefix) else blob_path


def _ingest(account: StorageAccount, settings: Settings, name: str, data: bytes) -> CreateResult:
    parts = name.split("/")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise bad_request(
            "BadRequest", f"Expected {{project}}/{{tag}}/{{file}} or {{project}}/{{file}}, not {name!r}."
        )
    project = find_project(account, parts[0])
    if project is None:
        raise project_not_found(parts[0])
    tag_ids: tuple[str, ...] = ()
    if len(parts) == 3:
        with _tag_lock:
            tag_ids = (find_or_create_tag(account, settings, project.id, parts[1]).id,)
    [result] = create_images(account, settings, project.id, [NewImage(data=data, name=name, tag_ids=tag_ids)])
    return result


def _reject(account: StorageAccount, name: str, data: bytes, code: str, message: str) -> None:
    """Move the file under rejected/ with the reason beside it (each step idempotent, so a retry completes it)."""
    uploads = UploadStore(account)
    source = f"{UPLOADS_CONTAINER}/{name}"
    reason = json.dumps({"code": code, "message": message, "source": source}, indent=2).encode()
    uploads.put(f"{REJECTED_PREFIX}{name}", data)
    uploads.put(f"{REJECTED_PREFIX}{name}.reason.json", reason, "application/json")
    uploads.delete(name)
    log.warning("rejected %s: %s %s", source, code, message)


def ingest_blob(blob_path: str, data: bytes) -> None:
    """Blob trigger body for `uploads/{name}`; never raises for bad input (see the module docstring)."""
    name = blob_name(blob_path)
    if name.startswith(REJECTED_PREFIX) or not name or name.endswith("/"):
        return  # our own rejects, and folder markers some tools create
    account, settings = get_storage(), get_settings()
    try:
        result = _ingest(account, settings, name, data)
    except CustomVisionError as exc:
        _reject(account, name, data, exc.code, exc.message)
        return
    if result.status is ImageCreateStatus.ERROR_STORAGE:
        raise IngestRetry(f"{name}: {result.message}")
    if not result.status.succeeded:
        _reject(account, name, data, result.status.value, result.message)
        return
    log.info("ingested %s (%s)", name, result.status.value)
