"""The blob drop folder: `uploads/{project}/{tag}/{file}` (or `uploads/{project}/{file}`, untagged) becomes a
training image, stored by the same service call as an API upload.

`{project}` is a project id or exact name; `{tag}` a tag name (any case), created when missing. A file that cannot
become an image (bad bytes, unknown project, wrong folder depth, ...) is moved to `uploads/rejected/{name}` with a
`{name}.reason.json` beside it, and the trigger succeeds: retrying cannot fix bad input. Tags created for a file
that was not stored are deleted again, so a rejected file leaves no new tag behind. Only failures that a retry
might fix (storage errors) propagate, so the Functions host retries and finally poisons the blob.

Processing the same blob again is harmless: the content hash makes it OKDuplicate, and its tag is added if missing.
Successfully ingested files stay in `uploads`: each write of a blob is one BlobCreated event, delivered once (at
least once: reprocessing is harmless, see above).

Boxes for detection: an untagged `uploads/{project}/{file}.jpg` with `{file}.xml` (Pascal VOC) or `{file}.json`
(COCO) beside it becomes an image with regions, their tags found or created by name. The two blobs may arrive in
either order: whichever comes second ingests the image with its boxes (boxes added to an image that is already
there are kept once). An annotation that cannot be read, or that names an unusable box, is rejected like a bad
image; one whose image has not arrived yet waits for it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from pipeline.core.boxes import Box
from pipeline.core.errors import CustomVisionError, ServiceUnavailable, bad_request, project_not_found
from pipeline.core.settings import Settings, get_settings
from pipeline.core.vocabulary import ImageCreateStatus
from pipeline.services.images_create import CreateResult, NewImage, create_images
from pipeline.services.images_edit import add_image_regions
from pipeline.services.projects import find_project
from pipeline.services.tags import create_tag, delete_tags_without_images, find_tag
from pipeline.store import StorageAccount, get_storage
from pipeline.store.images import UPLOADS_CONTAINER, UploadStore
from pipeline.vision.annotations import AnnotationError, NamedBox, read_coco, read_voc

log = logging.getLogger(__name__)

REJECTED_PREFIX = "rejected/"

# Finding or creating a tag is check-then-create; serialising it here stops concurrent triggers in one process from
# creating the same new tag twice (separate processes can still race; the fix belongs in pipeline.services.tags).
_tag_lock = threading.Lock()


class IngestRetry(RuntimeError):
    """Ingestion failed for a reason a retry may fix; raised so the host retries the blob."""


def blob_name(blob_path: str) -> str:
    """The name inside the container: the real host passes `uploads/{name}`, the local host may pass `{name}`."""
    prefix = f"{UPLOADS_CONTAINER}/"
    return blob_path[len(prefix) :] if blob_path.startswith(prefix) else blob_path


SIDECARS = {".xml": read_voc, ".json": read_coco}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _split(name: str) -> tuple[str, str]:
    """(stem, suffix) of a blob name; the suffix lower-cased with its dot, '' when there is none."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, f".{suffix.lower()}") if dot and "/" not in suffix else (name, "")


def _sidecar(uploads: UploadStore, name: str) -> tuple[str, bytes] | None:
    """The annotation file beside an untagged image, if one has arrived."""
    stem = _split(name)[0]
    for suffix in SIDECARS:
        for candidate in uploads.names(f"{stem}{suffix}"):
            if _split(candidate) == (stem, suffix):
                return candidate, uploads.read(candidate)
    return None


class _FileTags:
    """One file's tags, found by name (any case) or created. A tag created for a file that is then not stored is
    deleted again if no image carries it, so a rejected file leaves no new tag behind. From its first new tag
    until the outcome is known this holds `_tag_lock`: no other trigger here can start using a tag that may
    yet be deleted."""

    def __init__(self, account: StorageAccount, settings: Settings, project_id: str) -> None:
        self._account, self._settings, self._project_id = account, settings, project_id
        self._created: list[str] = []
        self._stored = False

    def __enter__(self) -> _FileTags:
        return self

    def tag_id(self, name: str) -> str:
        """The id of the tag called `name` (any case), created as Regular if missing."""
        if not self._created:
            _tag_lock.acquire()
        try:
            existing = find_tag(self._account, self._project_id, name)
            if existing is not None:
                return existing.id
            created = create_tag(self._account, self._settings, self._project_id, name)
            self._created.append(created.id)
            return created.id
        finally:
            if not self._created:
                _tag_lock.release()

    def stored(self) -> None:
        """The file became an image: the tags it created stay."""
        self._stored = True

    def __exit__(self, *_: object) -> None:
        if not self._created:
            return
        try:
            if not self._stored:
                self._delete_unused()
        finally:
            _tag_lock.release()

    def _delete_unused(self) -> None:
        """Best effort: a failure here must not hide why the file was not stored."""
        try:
            delete_tags_without_images(self._account, self._project_id, self._created)
        except Exception:
            log.exception(
                "could not delete the unused new tags %s of project %s", self._created, self._project_id
            )


def _regions(tag_id: Callable[[str], str], annotation: str, content: bytes, image: str) -> tuple[Box, ...]:
    try:
        boxes: list[NamedBox] = SIDECARS[_split(annotation)[1]](content, image.rsplit("/", 1)[-1])
    except AnnotationError as error:
        raise bad_request("BadRequestImageRegions", f"{annotation}: {error}") from error
    if any(not box.name for box in boxes):
        raise bad_request("BadRequestImageRegions", f"{annotation}: a box has no name.")
    tags = {box.name: tag_id(box.name) for box in boxes}
    return tuple(Box(tags[b.name], b.left, b.top, b.width, b.height) for b in boxes if b.width and b.height)


def _ingest(account: StorageAccount, settings: Settings, name: str, data: bytes) -> CreateResult | None:
    parts = name.split("/")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise bad_request(
            "BadRequest", f"Expected {{project}}/{{tag}}/{{file}} or {{project}}/{{file}}, not {name!r}."
        )
    project = find_project(account, parts[0])
    if project is None:
        raise project_not_found(parts[0])
    uploads = UploadStore(account)
    stem, suffix = _split(name)
    if len(parts) == 2 and suffix in SIDECARS:
        images = [n for n in uploads.names(stem) if _split(n)[0] == stem and _split(n)[1] in IMAGE_SUFFIXES]
        if not images:
            return None  # the image is not there yet; its own trigger will find this file
        annotation, name, data = (name, data), images[0], uploads.read(images[0])
    else:
        annotation = _sidecar(uploads, name) if len(parts) == 2 else None
    with _FileTags(account, settings, project.id) as tags:
        tag_ids = (tags.tag_id(parts[1]),) if len(parts) == 3 else ()
        regions = _regions(tags.tag_id, *annotation, name) if annotation else ()
        [result] = create_images(
            account, settings, project.id, [NewImage(data=data, name=name, tag_ids=tag_ids, regions=regions)]
        )
        if result.status is ImageCreateStatus.OK_DUPLICATE and regions and result.image is not None:
            add_image_regions(
                account, settings, project.id, [(result.image.id, region) for region in regions]
            )
        if result.status.succeeded:
            tags.stored()
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
    except ServiceUnavailable as exc:
        raise IngestRetry(f"{name}: {exc.message}") from exc
    except CustomVisionError as exc:
        _reject(account, name, data, exc.code, exc.message)
        return
    if result is None:
        log.info("annotation %s waits for its image", name)
        return
    if result.status is ImageCreateStatus.ERROR_STORAGE:
        raise IngestRetry(f"{name}: {result.message}")
    if not result.status.succeeded:
        _reject(account, name, data, result.status.value, result.message)
        return
    log.info("ingested %s (%s)", name, result.status.value)
