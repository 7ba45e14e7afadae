"""Training images: the rules Custom Vision applies to image batches, image tags, regions and metadata.

The API routers and the blob drop folder both add images through `create_images`, so an ingested file is stored
exactly as an uploaded one. An image is never half-stored: the content hash is claimed first (which also makes
duplicate detection atomic), then the blobs are written, then the row; a failure at any step undoes the earlier ones.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from azure.core.exceptions import AzureError

from pipeline.api.wire.images import ImageCreateStatus
from pipeline.core.errors import bad_request, not_found
from pipeline.core.settings import Settings
from pipeline.services.projects import get_project, new_id
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord, ImageTagRecord, RegionRecord, TagRecord, utcnow
from pipeline.store.tags import TagStore
from pipeline.vision.fetch import FetchError, FetchTooLarge, fetch_url
from pipeline.vision.imaging import ImageRejected, PreparedImage, prepare_image

log = logging.getLogger(__name__)

# Documented Custom Vision limits that Settings does not (yet) expose.
MAX_TAGS_PER_IMAGE = 20
MAX_METADATA_ENTRIES = 10
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_VALUE_LENGTH = 256
MAX_IMAGE_IDS = 256  # get by ids, delete
MAX_EDIT_BATCH = 64  # image tag / region / metadata edits
MAX_TAG_IDS = 20  # tag ids in a query string

TAGGING_STATUSES = ("All", "Tagged", "Untagged")
ORDERS = ("Newest", "Oldest")

# A hash claim whose image row has not appeared after this long belongs to an upload that died midway.
CLAIM_GRACE = timedelta(seconds=30)
_CLAIM_POLL_SECONDS = 0.1
# Images of one batch are decoded and stored concurrently: storage round trips dominate, and Pillow releases the GIL.
_WORKERS = 4
_COORDINATE_SLACK = 1e-6


@dataclass(frozen=True)
class NewRegion:
    tag_id: str
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class NewImage:
    """One image of a batch: its bytes or the URL to fetch them from, and what to attach to it."""

    data: bytes | None = None
    url: str | None = None
    name: str | None = None
    tag_ids: tuple[str, ...] = ()
    regions: tuple[NewRegion, ...] = ()

    @property
    def source(self) -> str | None:
        """What the summary echoes as `sourceUrl`: the URL, else the file name."""
        return self.url or self.name


@dataclass(frozen=True)
class CreateResult:
    source: str | None
    status: ImageCreateStatus
    message: str = ""
    image: ImageRecord | None = None


@dataclass
class TagEdits:
    """Outcome of CreateImageTags, as (image id, tag id) pairs."""

    created: list[tuple[str, str]] = field(default_factory=list)
    duplicated: list[tuple[str, str]] = field(default_factory=list)
    exceeded: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RegionEdits:
    """Outcome of CreateImageRegions, as (image id, region) pairs."""

    created: list[tuple[str, RegionRecord]] = field(default_factory=list)
    duplicated: list[tuple[str, NewRegion]] = field(default_factory=list)
    exceeded: list[tuple[str, NewRegion]] = field(default_factory=list)


@dataclass(frozen=True)
class MetadataResult:
    image_id: str
    status: str  # ImageMetadataUpdateStatus: OK, ErrorImageNotFound, ErrorLimitExceed
    metadata: dict[str, str] | None = None


# --- validation helpers -------------------------------------------------------------------------------------


def _unique(values: Iterable[str]) -> list[str]:
    """Lower-cased (ids are lower-case GUIDs), duplicates dropped, order kept."""
    return list(dict.fromkeys(v.strip().lower() for v in values if v and v.strip()))


def _check_ids(values: Iterable[str], what: str, limit: int) -> list[str]:
    """Ids must be GUIDs (they become table keys) and at most `limit` of them."""
    ids = _unique(values)
    for value in ids:
        try:
            uuid.UUID(value)
        except ValueError:
            raise bad_request("BadRequestInvalidIds", f"{value!r} is not a valid {what} id.") from None
    if len(ids) > limit:
        raise bad_request(
            "BadRequestExceededBatchSize", f"At most {limit} {what} ids are allowed per request."
        )
    return ids


def _choice(value: str, allowed: Sequence[str], name: str) -> str:
    match = next((a for a in allowed if a.lower() == value.lower()), None)
    if match is None:
        raise bad_request("BadRequest", f"{name} must be one of {', '.join(allowed)}, not {value!r}.")
    return match


def _project_tags(account: StorageAccount, project_id: str) -> dict[str, TagRecord]:
    return {t.id: t for t in TagStore(account).list(project_id)}


def _require_tags(tag_ids: Iterable[str], tags: Mapping[str, TagRecord]) -> None:
    unknown = [t for t in _unique(tag_ids) if t not in tags]
    if unknown:
        raise bad_request("BadRequestImageTags", f"Unknown tag ids for this project: {', '.join(unknown)}.")


def _check_region(region: NewRegion) -> None:
    """Normalised coordinates: the box must lie inside the image and have an area (NaN fails every test)."""
    r = region
    inside = (
        0 <= r.left <= 1
        and 0 <= r.top <= 1
        and 0 < r.width <= 1
        and 0 < r.height <= 1
        and r.left + r.width <= 1 + _COORDINATE_SLACK
        and r.top + r.height <= 1 + _COORDINATE_SLACK
    )
    if not inside:
        raise bad_request(
            "BadRequestImageRegions",
            f"Region ({r.left}, {r.top}, {r.width}, {r.height}) must lie within 0..1 with a positive size.",
        )


def _check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise bad_request(
            "BadRequestImageMetadataKey", f"At most {MAX_METADATA_ENTRIES} metadata entries per image."
        )
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY_LENGTH:
            raise bad_request(
                "BadRequestImageMetadataKey",
                f"Metadata keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters.",
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            raise bad_request(
                "BadRequestImageMetadataValue",
                f"Metadata values must be at most {MAX_METADATA_VALUE_LENGTH} characters.",
            )
    return dict(metadata)


def _mixes_negative(tag_ids: Iterable[str], tags: Mapping[str, TagRecord]) -> bool:
    """A Negative tag means "none of the others": it cannot share an image with another tag."""
    types = {tags[t].type for t in tag_ids if t in tags}
    return "Negative" in types and len(types) > 1


def _tag_problem(
    tag_ids: Sequence[str], regions: Sequence[NewRegion], tags: Mapping[str, TagRecord], settings: Settings
) -> ImageRejected | None:
    if len(tag_ids) > MAX_TAGS_PER_IMAGE:
        return ImageRejected(
            ImageCreateStatus.ERROR_TAG_LIMIT_EXCEED, f"An image can have at most {MAX_TAGS_PER_IMAGE} tags."
        )
    if len(regions) > settings.max_regions_per_image:
        return ImageRejected(
            ImageCreateStatus.ERROR_REGION_LIMIT_EXCEED,
            f"An image can have at most {settings.max_regions_per_image} regions.",
        )
    if _mixes_negative([*tag_ids, *(r.tag_id.lower() for r in regions)], tags):
        return ImageRejected(
            ImageCreateStatus.ERROR_NEGATIVE_AND_REGULAR_TAG,
            "A Negative tag cannot be combined with other tags.",
        )
    return None


def _same_box(a: RegionRecord, b: NewRegion) -> bool:
    return a.tag_id == b.tag_id.lower() and all(
        abs(x - y) <= _COORDINATE_SLACK
        for x, y in ((a.left, b.left), (a.top, b.top), (a.width, b.width), (a.height, b.height))
    )


def _region_record(region: NewRegion) -> RegionRecord:
    return RegionRecord(
        id=new_id(),
        tag_id=region.tag_id.lower(),
        left=region.left,
        top=region.top,
        width=region.width,
        height=region.height,
    )


def _quietly(action: Callable[[], None], what: str) -> None:
    """Best-effort cleanup: log and carry on, so the original error is the one reported."""
    try:
        action()
    except Exception:
        log.exception("cleanup failed: %s", what)


# --- creating images ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    """What every image of one create request shares."""

    store: ImageStore
    settings: Settings
    project_id: str
    tags: Mapping[str, TagRecord]
    metadata: Mapping[str, str]

    def create(self, entry: NewImage, tag_ids: list[str], problem: ImageRejected | None) -> CreateResult:
        """One image's outcome; never raises (a failure is this image's status, not the batch's)."""
        try:
            if problem is not None:
                raise problem
            prepared = prepare_image(
                self._bytes(entry), self.settings, max_bytes=self.settings.max_training_image_bytes
            )
            image, status = self._store(prepared, tag_ids, entry.regions)
            return CreateResult(entry.source, status, image=image)
        except ImageRejected as exc:
            return CreateResult(entry.source, exc.status, exc.message)
        except AzureError:
            log.exception("storage error while adding an image to project %s", self.project_id)
            return CreateResult(
                entry.source, ImageCreateStatus.ERROR_STORAGE, "Storage failed; nothing was stored."
            )
        except Exception:
            log.exception("unexpected error while adding an image to project %s", self.project_id)
            return CreateResult(
                entry.source, ImageCreateStatus.ERROR_UNKNOWN, "Unexpected error; nothing was stored."
            )

    def _bytes(self, entry: NewImage) -> bytes:
        if entry.url is None:
            return entry.data or b""
        try:
            return fetch_url(entry.url, self.settings, max_bytes=self.settings.max_training_image_bytes)
        except FetchTooLarge as exc:
            raise ImageRejected(ImageCreateStatus.ERROR_IMAGE_SIZE, str(exc)) from exc
        except FetchError as exc:
            raise ImageRejected(ImageCreateStatus.ERROR_SOURCE, str(exc)) from exc

    def _store(
        self, prepared: PreparedImage, tag_ids: list[str], regions: Sequence[NewRegion]
    ) -> tuple[ImageRecord, ImageCreateStatus]:
        """Claim the content hash, then store; or return the image that already holds the hash."""
        image_id = new_id()
        content_hash = prepared.content_hash
        while True:
            holder = self.store.claim_hash(self.project_id, content_hash, image_id)
            if holder is None:
                return self._insert(image_id, prepared, tag_ids, regions), ImageCreateStatus.OK
            existing = self.store.get(self.project_id, holder)
            if existing is not None:
                return self._add_tags_to_duplicate(existing, tag_ids), ImageCreateStatus.OK_DUPLICATE
            claim = self.store.hash_claim(self.project_id, content_hash)
            if claim is None or claim.image_id != holder:
                continue  # released or taken over meanwhile: look again
            if utcnow() - claim.claimed_at < CLAIM_GRACE:
                time.sleep(_CLAIM_POLL_SECONDS)  # an upload of the same bytes is in flight; wait for its row
                continue
            if self.store.take_over_hash(self.project_id, content_hash, claim, image_id):
                log.warning("took over the stale claim on %s in project %s", content_hash, self.project_id)
                return self._insert(image_id, prepared, tag_ids, regions), ImageCreateStatus.OK

    def _insert(
        self, image_id: str, prepared: PreparedImage, tag_ids: list[str], regions: Sequence[NewRegion]
    ) -> ImageRecord:
        prefix = f"{self.project_id}/{image_id}"
        blobs = {
            f"{prefix}/original.{prepared.extension}": (prepared.original, prepared.content_type),
            f"{prefix}/resized.jpg": (prepared.resized, "image/jpeg"),
            f"{prefix}/thumbnail.jpg": (prepared.thumbnail, "image/jpeg"),
        }
        original, resized, thumbnail = blobs
        record = ImageRecord(
            id=image_id,
            project_id=self.project_id,
            width=prepared.width,
            height=prepared.height,
            content_hash=prepared.content_hash,
            original_blob=original,
            resized_blob=resized,
            thumbnail_blob=thumbnail,
            tags=[ImageTagRecord(tag_id=t) for t in tag_ids],
            regions=[_region_record(r) for r in regions],
            metadata=dict(self.metadata),
        )
        try:
            for name, (data, content_type) in blobs.items():
                self.store.put_blob(name, data, content_type)
            return self.store.insert(record)
        except BaseException:
            _quietly(lambda: self.store.delete_blobs(blobs), f"blobs of {prefix}")
            _quietly(
                lambda: self.store.release_hash(self.project_id, prepared.content_hash), f"hash of {prefix}"
            )
            raise

    def _add_tags_to_duplicate(self, existing: ImageRecord, tag_ids: list[str]) -> ImageRecord:
        def add(image: ImageRecord) -> ImageRecord | None:
            have = [t.tag_id for t in image.tags]
            missing = [t for t in tag_ids if t not in have]
            if not missing:
                return None
            regions = [NewRegion(r.tag_id, r.left, r.top, r.width, r.height) for r in image.regions]
            problem = _tag_problem([*have, *missing], regions, self.tags, self.settings)
            if problem is not None:
                raise problem
            return image.model_copy(
                update={"tags": [*image.tags, *(ImageTagRecord(tag_id=t) for t in missing)]}
            )

        return self.store.update(self.project_id, existing.id, add) or existing


def create_images(
    account: StorageAccount,
    settings: Settings,
    project_id: str,
    images: Sequence[NewImage],
    tag_ids: Iterable[str] = (),
    metadata: Mapping[str, str] | None = None,
) -> list[CreateResult]:
    """Add a batch of images (CreateImagesFromData/Files/Urls and the drop folder), one result per image.

    Whole-request problems (unknown project or tag, too many images, bad regions or metadata) raise a
    CustomVisionError before anything is stored or fetched; per-image problems become that image's status.
    """
    project = get_project(account, project_id)
    if not images:
        raise bad_request("BadRequestImageBatch", "The batch contains no images.")
    if len(images) > settings.max_images_per_batch:
        raise bad_request(
            "BadRequestExceededBatchSize",
            f"The batch has {len(images)} images; at most {settings.max_images_per_batch} are allowed.",
        )
    tags = _project_tags(account, project.id)
    batch_tags = _unique(tag_ids)
    _require_tags(
        [
            *batch_tags,
            *(t for i in images for t in i.tag_ids),
            *(r.tag_id for i in images for r in i.regions),
        ],
        tags,
    )
    for image in images:
        for region in image.regions:
            _check_region(region)
    store = ImageStore(account)
    batch = _Batch(store, settings, project.id, tags, _check_metadata(metadata or {}))

    room = settings.max_images_per_project - store.count(project.id)
    plans: list[tuple[NewImage, list[str], ImageRejected | None]] = []
    for image in images:
        image_tags = _unique([*batch_tags, *image.tag_ids])
        problem = _tag_problem(image_tags, image.regions, tags, settings)
        if problem is None:
            if room <= 0:
                problem = ImageRejected(
                    ImageCreateStatus.ERROR_LIMIT_EXCEED,
                    f"A project can have at most {settings.max_images_per_project} images.",
                )
            room -= 1
        plans.append((image, image_tags, problem))
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(plans))) as pool:
        return list(pool.map(lambda plan: batch.create(*plan), plans))


# --- reading ------------------------------------------------------------------------------------------------


def _select(images: Iterable[ImageRecord], tag_ids: Iterable[str], tagging: str) -> list[ImageRecord]:
    wanted = set(_unique(tag_ids))
    status = _choice(tagging, TAGGING_STATUSES, "taggingStatus")
    chosen = []
    for image in images:
        carried = image.tag_ids
        if (status == "Tagged" and not carried) or (status == "Untagged" and carried):
            continue
        if wanted and not wanted & carried:
            continue
        chosen.append(image)
    return chosen


def list_images(
    account: StorageAccount,
    project_id: str,
    *,
    tag_ids: Iterable[str] = (),
    tagging: str = "All",
    order_by: str = "Newest",
    take: int = 50,
    skip: int = 0,
) -> list[ImageRecord]:
    """GetImages and its Tagged/Untagged variants: images with any of `tag_ids`, newest first by default."""
    project = get_project(account, project_id)
    order = _choice(order_by, ORDERS, "orderBy")
    images = _select(ImageStore(account).iter(project.id), tag_ids, tagging)
    images.sort(key=lambda i: (i.created, i.id), reverse=order == "Newest")
    return images[skip : skip + take]


def count_images(
    account: StorageAccount, project_id: str, *, tag_ids: Iterable[str] = (), tagging: str = "All"
) -> int:
    project = get_project(account, project_id)
    return len(_select(ImageStore(account).iter(project.id), tag_ids, tagging))


def get_images_by_ids(
    account: StorageAccount, project_id: str, image_ids: Iterable[str]
) -> list[ImageRecord]:
    """The images that exist, in the order asked for (one point read each, whatever the project's size)."""
    project = get_project(account, project_id)
    store = ImageStore(account)
    found = (store.get(project.id, i) for i in _check_ids(image_ids, "image", MAX_IMAGE_IDS))
    return [image for image in found if image is not None]


def tag_names(account: StorageAccount, project_id: str) -> dict[str, str]:
    return {t.id: t.name for t in TagStore(account).list(project_id)}


# --- deleting and editing -----------------------------------------------------------------------------------


def delete_images(
    account: StorageAccount, project_id: str, image_ids: Iterable[str], all_images: bool
) -> None:
    project = get_project(account, project_id)
    store = ImageStore(account)
    if all_images:
        targets = store.list(project.id)
    else:
        ids = _check_ids(image_ids, "image", MAX_IMAGE_IDS)
        if not ids:
            raise bad_request(
                "BadRequestInvalidIds", "Give imageIds, or allImages=true to delete every image."
            )
        targets = [image for image in (store.get(project.id, i) for i in ids) if image is not None]
    for image in targets:
        store.delete(image)


def _existing_images(store: ImageStore, project_id: str, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
    images = {}
    for image_id in _unique(image_ids):
        image = store.get(project_id, image_id)
        if image is None:
            raise not_found("NotFoundImage", f"Image {image_id} not found.")
        images[image_id] = image
    return images


def _check_edit_batch(size: int, what: str) -> None:
    if size == 0:
        raise bad_request("BadRequestImageBatch", f"The batch contains no {what}.")
    if size > MAX_EDIT_BATCH:
        raise bad_request("BadRequestExceededBatchSize", f"At most {MAX_EDIT_BATCH} {what} per batch.")


def _refuse_negative_mix(image: ImageRecord, added: Iterable[str], tags: Mapping[str, TagRecord]) -> None:
    if _mixes_negative(image.tag_ids | set(added), tags):
        raise bad_request(
            "BadRequestNegativeAndRegularTagOnSameImage",
            f"Image {image.id} would carry a Negative tag together with other tags.",
        )


def _add_tags(store: ImageStore, project_id: str, image_id: str, tag_ids: list[str]) -> dict[str, str]:
    """Tag one image; say for each tag whether it was created, duplicated or exceeded the per-image limit."""
    outcome: dict[str, str] = {}

    def add(image: ImageRecord) -> ImageRecord | None:
        outcome.clear()  # recomputed on every ETag retry
        have = [t.tag_id for t in image.tags]
        new: list[str] = []
        for tag_id in tag_ids:
            if tag_id in have:
                outcome[tag_id] = "duplicated"
            elif len(have) + len(new) >= MAX_TAGS_PER_IMAGE:
                outcome[tag_id] = "exceeded"
            else:
                new.append(tag_id)
                outcome[tag_id] = "created"
        if not new:
            return None
        return image.model_copy(update={"tags": [*image.tags, *(ImageTagRecord(tag_id=t) for t in new)]})

    store.update(project_id, image_id, add)
    return outcome


def add_image_tags(account: StorageAccount, project_id: str, pairs: Sequence[tuple[str, str]]) -> TagEdits:
    """CreateImageTags: tag already there -> duplicated; over MAX_TAGS_PER_IMAGE -> exceeded."""
    project = get_project(account, project_id)
    pairs = list(dict.fromkeys((i.lower(), t.lower()) for i, t in pairs))
    _check_edit_batch(len(pairs), "image tags")
    tags = _project_tags(account, project.id)
    _require_tags((t for _, t in pairs), tags)
    store = ImageStore(account)
    images = _existing_images(store, project.id, _check_ids((i for i, _ in pairs), "image", MAX_EDIT_BATCH))
    wanted: dict[str, list[str]] = {}
    for image_id, tag_id in pairs:
        wanted.setdefault(image_id, []).append(tag_id)
    for image_id, tag_ids in wanted.items():
        _refuse_negative_mix(images[image_id], tag_ids, tags)
    outcome = {
        (image_id, tag_id): result
        for image_id, tag_ids in wanted.items()
        for tag_id, result in _add_tags(store, project.id, image_id, tag_ids).items()
    }
    edits = TagEdits()
    for pair in pairs:
        getattr(edits, outcome.get(pair, "duplicated")).append(pair)
    return edits


def remove_image_tags(
    account: StorageAccount, project_id: str, image_ids: Iterable[str], tag_ids: Iterable[str]
) -> None:
    """DeleteImageTags: whole-image tags only (a region's tag goes with DeleteImageRegions)."""
    project = get_project(account, project_id)
    images = _check_ids(image_ids, "image", MAX_EDIT_BATCH)
    removed = set(_check_ids(tag_ids, "tag", MAX_TAG_IDS))
    store = ImageStore(account)

    def remove(image: ImageRecord) -> ImageRecord | None:
        kept = [t for t in image.tags if t.tag_id not in removed]
        return image.model_copy(update={"tags": kept}) if len(kept) != len(image.tags) else None

    for image_id in images:
        store.update(project.id, image_id, remove)


def _add_regions(
    store: ImageStore, settings: Settings, project_id: str, image_id: str, regions: list[NewRegion]
) -> RegionEdits:
    """Add boxes to one image, sorting each into created, duplicated or exceeded."""
    edits = RegionEdits()

    def add(image: ImageRecord) -> ImageRecord | None:
        nonlocal edits
        edits = RegionEdits()  # recomputed on every ETag retry
        boxes = list(image.regions)
        for region in regions:
            if any(_same_box(box, region) for box in boxes):
                edits.duplicated.append((image.id, region))
            elif len(boxes) >= settings.max_regions_per_image:
                edits.exceeded.append((image.id, region))
            else:
                boxes.append(_region_record(region))
                edits.created.append((image.id, boxes[-1]))
        return image.model_copy(update={"regions": boxes}) if edits.created else None

    store.update(project_id, image_id, add)
    return edits


def add_image_regions(
    account: StorageAccount, settings: Settings, project_id: str, entries: Sequence[tuple[str, NewRegion]]
) -> RegionEdits:
    """CreateImageRegions: an identical box with the same tag -> duplicated; over the per-image limit -> exceeded."""
    project = get_project(account, project_id)
    _check_edit_batch(len(entries), "regions")
    tags = _project_tags(account, project.id)
    _require_tags((r.tag_id for _, r in entries), tags)
    for _, region in entries:
        _check_region(region)
    store = ImageStore(account)
    images = _existing_images(store, project.id, _check_ids((i for i, _ in entries), "image", MAX_EDIT_BATCH))
    wanted: dict[str, list[NewRegion]] = {}
    for image_id, region in entries:
        wanted.setdefault(image_id.lower(), []).append(region)
    for image_id, regions in wanted.items():
        _refuse_negative_mix(images[image_id], (r.tag_id.lower() for r in regions), tags)
    edits = RegionEdits()
    for image_id, regions in wanted.items():
        added = _add_regions(store, settings, project.id, image_id, regions)
        edits.created += added.created
        edits.duplicated += added.duplicated
        edits.exceeded += added.exceeded
    return edits


def remove_image_regions(account: StorageAccount, project_id: str, region_ids: Iterable[str]) -> None:
    project = get_project(account, project_id)
    removed = set(_check_ids(region_ids, "region", MAX_EDIT_BATCH))
    if not removed:
        raise bad_request("BadRequestInvalidIds", "Give the regionIds to delete.")
    store = ImageStore(account)

    def remove(image: ImageRecord) -> ImageRecord | None:
        kept = [r for r in image.regions if r.id not in removed]
        return image.model_copy(update={"regions": kept}) if len(kept) != len(image.regions) else None

    for image in store.iter(project.id):
        if any(r.id in removed for r in image.regions):
            store.update(project.id, image.id, remove)


def _merge_metadata(
    store: ImageStore, project_id: str, image_id: str, updates: Mapping[str, str]
) -> MetadataResult:
    too_many = False

    def merge(image: ImageRecord) -> ImageRecord | None:
        nonlocal too_many
        merged = {**image.metadata, **updates}
        too_many = len(merged) > MAX_METADATA_ENTRIES
        return None if too_many else image.model_copy(update={"metadata": merged})

    image = store.update(project_id, image_id, merge)
    if image is None:
        return MetadataResult(image_id, "ErrorImageNotFound")
    return MetadataResult(image_id, "ErrorLimitExceed" if too_many else "OK", image.metadata)


def update_image_metadata(
    account: StorageAccount, project_id: str, image_ids: Iterable[str], metadata: Mapping[str, str]
) -> list[MetadataResult]:
    """UpdateImageMetadata: merge `metadata` into each image's; over MAX_METADATA_ENTRIES -> ErrorLimitExceed."""
    project = get_project(account, project_id)
    ids = _check_ids(image_ids, "image", MAX_EDIT_BATCH)
    if not ids:
        raise bad_request("BadRequestInvalidIds", "Give the imageIds to update.")
    updates = _check_metadata(metadata)
    store = ImageStore(account)
    return [_merge_metadata(store, project.id, image_id, updates) for image_id in ids]
