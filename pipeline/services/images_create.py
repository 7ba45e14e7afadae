"""Adding training images: the rules Custom Vision applies to image batches.

The API routers, the blob drop folder and CreateImagesFromPredictions all add images through `create_images`, so
an ingested file is stored exactly as an uploaded one. An image is never half-stored: the content hash is claimed
first (which also makes duplicate detection atomic), then the blobs are written, then the row; a failure at any
step undoes the earlier ones, and what a killed process leaves is removed by the sweeper (services.sweeper).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from azure.core.exceptions import AzureError

from pipeline.core.boxes import Box
from pipeline.core.errors import ServiceUnavailable, bad_request
from pipeline.core.owners import provably_dead
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus, new_id
from pipeline.services.image_rules import (
    check_metadata,
    check_region,
    new_region,
    region_box,
    tag_problem,
    unique_ids,
)
from pipeline.services.projects import get_project, refresh_thumbnail
from pipeline.services.tags import project_tags
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord, ImageTagRecord, TagRecord, utcnow
from pipeline.vision.fetch import FetchError, FetchTooLarge, fetch_url
from pipeline.vision.imaging import ImageRejected, PreparedImage, prepare_image

log = logging.getLogger(__name__)

# A hash claim whose image row has not appeared after this long belongs to an upload that died midway (sooner when
# the claim's owner is a process on this host that no longer runs: pipeline.core.owners).
CLAIM_GRACE = timedelta(seconds=30)
_CLAIM_POLL_SECONDS = 0.1
# However the claims race, one image gives up after this long instead of looping for ever.
CLAIM_DEADLINE_SECONDS = 2 * CLAIM_GRACE.total_seconds()
# Images of one batch are decoded and stored concurrently: storage round trips dominate, and Pillow releases the GIL.
_WORKERS = 8


@dataclass(frozen=True)
class NewImage:
    """One image of a batch: its bytes or the URL to fetch them from, and what to attach to it."""

    data: bytes | None = None
    url: str | None = None
    name: str | None = None
    tag_ids: tuple[str, ...] = ()
    regions: tuple[Box, ...] = ()

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


def _quietly(action: Callable[[], None], what: str) -> None:
    """Best-effort cleanup: log and carry on, so the original error is the one reported."""
    try:
        action()
    except Exception:
        log.exception("cleanup failed: %s", what)


@dataclass(frozen=True)
class _Batch:
    """What every image of one create request shares."""

    store: ImageStore
    settings: Settings
    project_id: str
    tags: Mapping[str, TagRecord]
    metadata: Mapping[str, str]
    # Rows stored so far, indexed together at the end of the request (even one that fails midway).
    inserted: list[ImageRecord] = field(default_factory=list)

    def create(
        self, entry: NewImage, tag_ids: list[str], problem: ImageRejected | None, seq: int
    ) -> CreateResult:
        """One image's outcome; raises only ServiceUnavailable (a failure is this image's status, not the
        batch's)."""
        try:
            if problem is not None:
                raise problem
            prepared = prepare_image(
                self._bytes(entry), self.settings, max_bytes=self.settings.max_training_image_bytes
            )
            image, status = self._store(prepared, tag_ids, entry.regions, seq)
            return CreateResult(entry.source, status, image=image)
        except ImageRejected as exc:
            return CreateResult(entry.source, exc.status, exc.message)
        except ServiceUnavailable:
            raise  # too busy to decode now: the whole request answers 503 (a retry reports stored images as duplicates)
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
            return fetch_url(
                entry.url,
                self.settings,
                max_bytes=self.settings.max_training_image_bytes,
                readable_endpoints=self.store.account.link_endpoints,
            )
        except FetchTooLarge as exc:
            raise ImageRejected(ImageCreateStatus.ERROR_IMAGE_SIZE, str(exc)) from exc
        except FetchError as exc:
            raise ImageRejected(ImageCreateStatus.ERROR_SOURCE, str(exc)) from exc

    def _store(
        self, prepared: PreparedImage, tag_ids: list[str], regions: Sequence[Box], seq: int
    ) -> tuple[ImageRecord, ImageCreateStatus]:
        """Claim the content hash, then store; or return the image that already holds the hash.

        Another upload of the same bytes may hold the claim: wait for its row, take the claim over once it is
        stale or its owner is provably dead, and give up with ErrorStorage after CLAIM_DEADLINE_SECONDS whatever happens meanwhile."""
        image_id = new_id()
        content_hash = prepared.content_hash
        deadline = time.monotonic() + CLAIM_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            holder = self.store.claim_hash(self.project_id, content_hash, image_id)
            if holder is None:
                return self._insert(image_id, prepared, tag_ids, regions, seq), ImageCreateStatus.OK
            existing = self.store.get(self.project_id, holder)
            if existing is not None:
                return self._add_tags_to_duplicate(existing, tag_ids), ImageCreateStatus.OK_DUPLICATE
            claim = self.store.hash_claim(self.project_id, content_hash)
            if claim is None or claim.image_id != holder:
                continue  # released or taken over meanwhile: look again
            if utcnow() - claim.claimed_at < CLAIM_GRACE and not provably_dead(claim.owner):
                time.sleep(_CLAIM_POLL_SECONDS)  # an upload of the same bytes is in flight; wait for its row
                continue
            if self.store.take_over_hash(self.project_id, content_hash, claim, image_id):
                log.warning("took over the stale claim on %s in project %s", content_hash, self.project_id)
                return self._insert(image_id, prepared, tag_ids, regions, seq), ImageCreateStatus.OK
        raise ImageRejected(
            ImageCreateStatus.ERROR_STORAGE,
            f"Another upload of the same image kept its claim for {CLAIM_DEADLINE_SECONDS:.0f} s; try again.",
        )

    def _insert(
        self, image_id: str, prepared: PreparedImage, tag_ids: list[str], regions: Sequence[Box], seq: int
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
            regions=[new_region(r, image_id) for r in regions],
            metadata=dict(self.metadata),
            seq=seq,
        )
        try:
            for name, (data, content_type) in blobs.items():
                self.store.put_blob(name, data, content_type)
            self.store.insert(record, index=False)
            self.inserted.append(record)
            return record
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
            regions = [region_box(r) for r in image.regions]
            problem = tag_problem([*have, *missing], regions, self.tags, self.settings)
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

    Whole-request problems (unknown project, too many images, bad regions or metadata) raise a
    CustomVisionError before anything is stored or fetched; per-image problems, an unknown tag among them (as
    v3.4-preview's ErrorInvalidTag), become that image's status.
    """
    project = get_project(account, project_id)
    if not images:
        raise bad_request("BadRequestImageBatch", "The batch contains no images.")
    if len(images) > settings.max_images_per_batch:
        raise bad_request(
            "BadRequestExceededBatchSize",
            f"The batch has {len(images)} images; at most {settings.max_images_per_batch} are allowed.",
        )
    tags = project_tags(account, project.id)
    batch_tags = unique_ids(tag_ids)
    for image in images:
        for region in image.regions:
            check_region(region)
    store = ImageStore(account)
    batch = _Batch(store, settings, project.id, tags, check_metadata(metadata or {}))

    room = settings.max_images_per_project - store.count(project.id)
    plans: list[tuple[NewImage, list[str], ImageRejected | None]] = []
    for image in images:
        image_tags = unique_ids([*batch_tags, *image.tag_ids])
        problem = tag_problem(image_tags, image.regions, tags, settings)
        if problem is None:
            if room <= 0:
                problem = ImageRejected(
                    ImageCreateStatus.ERROR_LIMIT_EXCEED,
                    f"A project can have at most {settings.max_images_per_project} images.",
                )
            room -= 1
        plans.append((image, image_tags, problem))
    first = store.index(project.id).reserve(len(plans))  # creation order: one number per image, holes allowed
    try:
        with ThreadPoolExecutor(max_workers=min(_WORKERS, len(plans))) as pool:
            results = list(pool.map(lambda n: batch.create(*plans[n], first + n), range(len(plans))))
    finally:
        store.indexed_as_new(project.id, batch.inserted)
    if batch.inserted:
        refresh_thumbnail(account, project.id)
    return results
