"""ImportProject: a new project from an ExportProject token (pipeline.contract.project_package), made through the
same services as any other project, so names, tags, duplicates, limits and the image index all apply.

Runs within the request, in batches of `settings.max_images_per_batch`, up to `settings.max_import_images`
images. The project is created marked as importing by this process (its status is Importing) and unmarked once
complete. An import that fails deletes the project it was making; one whose process died is deleted by the
sweeper (services.sweeper: `abandoned_import`), so a failed import leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from itertools import groupby

from pipeline.contract.project_package import ImportToken, InvalidToken, PackagedImage, ProjectPackage
from pipeline.core.boxes import Box
from pipeline.core.errors import CustomVisionError, bad_request
from pipeline.core.limits import MAX_NAME_LENGTH
from pipeline.core.owners import provably_dead, this_process
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus
from pipeline.services.images_create import CreateResult, NewImage, create_images
from pipeline.services.projects import (
    ProjectChanges,
    create_project,
    delete_project,
    get_project,
    update_project,
)
from pipeline.services.tags import create_tag
from pipeline.store import StorageAccount
from pipeline.store.projects import ProjectStore
from pipeline.store.records import ProjectRecord
from pipeline.vision.fetch import FetchError, fetch_url

log = logging.getLogger(__name__)

MAX_PACKAGE_BYTES = 256 * 1024 * 1024
_NAME_ATTEMPTS = 100


def _invalid_token(why: str) -> CustomVisionError:
    return bad_request("BadRequestInvalidImportToken", f"The import token is not valid: {why}")


def _failed(why: str) -> CustomVisionError:
    return CustomVisionError(
        500, "ErrorProjectImportRequestFailed", f"The import failed and was undone: {why}"
    )


def read_package(account: StorageAccount, settings: Settings, token: str) -> ProjectPackage:
    """The package the token names, fetched through the outbound rules (which let a token of this Seer's own
    storage through) and checked against the token's hash."""
    try:
        pinned = ImportToken.decode(token)
    except InvalidToken as exc:
        raise _invalid_token("it is not a token ExportProject wrote.") from exc
    try:
        data = fetch_url(
            pinned.url, settings, max_bytes=MAX_PACKAGE_BYTES, readable_endpoints=account.link_endpoints
        )
    except FetchError as exc:
        raise _invalid_token(f"its package could not be read ({exc}); the link may have expired.") from exc
    if hashlib.sha256(data).hexdigest() != pinned.sha256:
        raise _invalid_token("its package does not match the token.")
    try:
        return ProjectPackage.model_validate_json(data)
    except ValueError as exc:
        raise _invalid_token("its package is not a project export.") from exc


def _named_project(
    account: StorageAccount, settings: Settings, package: ProjectPackage, name: str | None
) -> ProjectRecord:
    """A chosen name must be free (BadRequestProjectNameNotUnique otherwise); without one the exported name is
    used, numbered as `name (2)`, `name (3)` ... while taken."""

    def create(as_name: str) -> ProjectRecord:
        return create_project(
            account,
            settings,
            as_name,
            package.description,
            package.domain_id,
            package.classification_type,
            package.target_export_platforms,
            importing_owner=this_process(),
        )

    if name is not None:
        return create(name)
    for attempt in range(1, _NAME_ATTEMPTS + 1):
        suffix = f" ({attempt})" if attempt > 1 else ""
        try:
            return create(package.name[: MAX_NAME_LENGTH - len(suffix)] + suffix)
        except CustomVisionError as exc:
            if exc.code != "BadRequestProjectNameNotUnique":
                raise
    raise bad_request("BadRequestProjectNameNotUnique", f"Too many projects are named '{package.name}'.")


def _batches(
    images: list[PackagedImage], tag_ids: Mapping[str, str], size: int
) -> Iterator[tuple[list[PackagedImage], list[NewImage], dict[str, str]]]:
    """Consecutive images with the same metadata (a batch shares its metadata), at most `size` at a time."""
    for _, run in groupby(images, key=lambda i: sorted(i.metadata.items())):
        group = list(run)
        for start in range(0, len(group), size):
            packaged = group[start : start + size]
            entries = [
                NewImage(
                    url=image.url,
                    tag_ids=tuple(tag_ids[t] for t in image.tag_ids),
                    regions=tuple(
                        Box(tag_ids[r.tag_id], r.left, r.top, r.width, r.height) for r in image.regions
                    ),
                )
                for image in packaged
            ]
            yield packaged, entries, dict(packaged[0].metadata)


def _check_results(packaged: list[PackagedImage], results: list[CreateResult]) -> None:
    for image, result in zip(packaged, results, strict=True):
        if result.status == ImageCreateStatus.ERROR_SOURCE:
            raise _invalid_token(
                f"an image could not be read ({result.message}); the links may have expired."
            )
        if not result.status.succeeded:
            raise _failed(f"an image was refused: {result.status} {result.message}")
        if result.image is None or result.image.content_hash != image.sha256:
            raise _invalid_token("an image does not match the package.")


def _fill(
    account: StorageAccount, settings: Settings, project: ProjectRecord, package: ProjectPackage
) -> None:
    if (
        package.augmentation_methods is not None
        or package.publish_better_retrains
        or package.unknown_detection
    ):
        changes = ProjectChanges(
            augmentation_methods=package.augmentation_methods,
            publish_better_retrains=package.publish_better_retrains,
            unknown_detection=package.unknown_detection or None,
        )
        update_project(account, settings, project.id, changes)
    tag_ids = {
        tag.id: create_tag(account, settings, project.id, tag.name, tag.description, tag.type).id
        for tag in package.tags
    }
    known = set(tag_ids)
    if any(set(i.tag_ids) - known or {r.tag_id for r in i.regions} - known for i in package.images):
        raise _invalid_token("its package refers to tags it does not hold.")
    for packaged, entries, metadata in _batches(package.images, tag_ids, settings.max_images_per_batch):
        results = create_images(account, settings, project.id, entries, metadata=metadata)
        _check_results(packaged, results)


def import_project(
    account: StorageAccount, settings: Settings, token: str, name: str | None
) -> ProjectRecord:
    package = read_package(account, settings, token)
    if len(package.images) > settings.max_import_images:
        raise bad_request(
            "BadRequestExceededQuota",
            f"The project has {len(package.images)} images; ImportProject takes at most "
            f"{settings.max_import_images}. Move larger projects with `python -m pipeline.migrate`.",
        )
    project = _named_project(account, settings, package, name)
    try:
        _fill(account, settings, project, package)
    except BaseException:
        log.warning("import into project %s failed; deleting it", project.id)
        try:
            delete_project(account, project.id)
        except Exception:
            log.exception("could not delete the half-imported project %s", project.id)
        raise
    ProjectStore(account).update(
        project.id, lambda p: p.model_copy(update={"importing_since": None, "importing_owner": None})
    )
    return get_project(account, project.id)


def abandoned_import(project: ProjectRecord, cutoff: datetime) -> bool:
    """An import that will not finish: marked before `cutoff` (the sweeper's grace period, far longer than an
    import within a request takes) or by a process on this host that no longer runs."""
    if project.importing_since is None:
        return False
    return project.importing_since <= cutoff or provably_dead(project.importing_owner)
