"""Projects: validation and the rules Custom Vision applies, over the storage layer."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.core.augmentation import updated_methods
from pipeline.core.domains import DEFAULT_CLASSIFICATION_DOMAIN, EXPORT_PLATFORMS, domain_of, find_domain
from pipeline.core.errors import CustomVisionError, bad_request, project_not_found
from pipeline.core.limits import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, MAX_URI_LENGTH, check_length
from pipeline.core.outbound import OutboundRefused
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ClassificationType, DomainType, new_id, parse_choice
from pipeline.services.names import (
    claimed,
    iteration_name_claims,
    project_name_claims,
    renamed,
    tag_name_claims,
)
from pipeline.store import StorageAccount
from pipeline.store.housekeeping import Housekeeping
from pipeline.store.image_index import ALL
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.notification_queue import check_notification_queue
from pipeline.store.projects import ProjectStore
from pipeline.store.records import ProjectRecord, utcnow


def get_project(account: StorageAccount, project_id: str) -> ProjectRecord:
    """The project, or 404; a project being deleted is already gone."""
    project = ProjectStore(account).get(project_id.lower())
    if project is None or project.deleting:
        raise project_not_found(project_id)
    return project


def project_thumbnail(account: StorageAccount, project: ProjectRecord) -> str | None:
    """A read-only URL of the newest image's thumbnail (Custom Vision's project tile), None when it has no
    images; no storage call (GetProjects lists many projects)."""
    return ImageStore(account).blob_url(project.thumbnail_blob) if project.thumbnail_blob else None


def refresh_thumbnail(account: StorageAccount, project_id: str) -> None:
    """Point the project at its newest image's thumbnail, after uploads and deletions (three reads and an
    ETag-checked write only when it changed)."""
    store = ImageStore(account)
    newest = store.get_many(project_id, store.index(project_id).page(ALL, 0, 1))
    blob = newest[0].thumbnail_blob if newest else None
    ProjectStore(account).update(
        project_id,
        lambda p: None if p.thumbnail_blob == blob else p.model_copy(update={"thumbnail_blob": blob}),
    )


def list_projects(account: StorageAccount) -> list[ProjectRecord]:
    return [p for p in ProjectStore(account).list() if not p.deleting]


def find_project(account: StorageAccount, id_or_name: str) -> ProjectRecord | None:
    """A project by id, else by exact name (the drop folder accepts either)."""
    store = ProjectStore(account)
    try:
        project = store.get(str(uuid.UUID(id_or_name)))
    except ValueError:
        project = None
    if project is not None and project.deleting:
        project = None
    return project or store.find_by_name(id_or_name)


def _check_project_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise bad_request("BadRequestProjectName", f"Project name must be 1 to {MAX_NAME_LENGTH} characters.")
    return name


def _name_taken(name: str) -> CustomVisionError:
    return bad_request("BadRequestProjectNameNotUnique", f"A project named '{name}' already exists.")


def _bears(account: StorageAccount, name: str):
    """Whether a project exists and is called `name` (project names compare exactly, after trimming)."""

    def bears(project_id: str) -> bool:
        project = ProjectStore(account).get(project_id)
        return project is not None and not project.deleting and project.name == name

    return bears


def _check_unclaimed(store: ProjectStore, name: str, project_id: str) -> None:
    """Projects stored before names were claimed hold no claim: look for them too."""
    other = store.find_by_name(name)
    if other is not None and other.id != project_id:
        raise _name_taken(name)


def _check_description(description: str | None) -> None:
    check_length(description, MAX_DESCRIPTION_LENGTH, "BadRequestProjectDescription", "A project description")


def _check_notification_queue(account: StorageAccount, settings: Settings, uri: str | None) -> None:
    """The queue must pass the outbound policy now (and passes it again each time a notification is sent)."""
    if not uri:
        return
    try:
        check_notification_queue(account, settings, uri)
    except OutboundRefused as exc:
        raise bad_request("BadRequestInvalidUri", f"notificationQueueUri is refused: {exc}") from exc


def _resolve_domain_settings(
    domain_id: str | None, classification_type: str | None
) -> tuple[str, ClassificationType | None]:
    domain = find_domain(domain_id or DEFAULT_CLASSIFICATION_DOMAIN)
    if domain is None:
        raise bad_request("BadRequestProjectUnknownDomain", f"Domain {domain_id} is not a known domain.")
    if domain.type != DomainType.CLASSIFICATION:
        return domain.id, None
    classification = parse_choice(
        ClassificationType,
        classification_type,
        "classificationType",
        default=ClassificationType.MULTICLASS,
        code="BadRequestProjectUnknownClassification",
    )
    return domain.id, classification


def _check_export_platforms(platforms: list[str]) -> list[str]:
    unknown = [p for p in platforms if p not in EXPORT_PLATFORMS]
    if unknown:
        raise bad_request(
            "BadRequestProjectUnsupportedExportPlatform",
            f"Export platforms {unknown} are not supported; Seer exports {EXPORT_PLATFORMS}.",
        )
    return platforms


def create_project(
    account: StorageAccount,
    settings: Settings,
    name: str | None,
    description: str | None = None,
    domain_id: str | None = None,
    classification_type: str | None = None,
    target_export_platforms: list[str] | None = None,
    notification_queue_uri: str | None = None,
    export_model_container_uri: str | None = None,
    importing_owner: str | None = None,
) -> ProjectRecord:
    """`importing_owner` (ImportProject's process) creates the project marked as importing."""
    name = _check_project_name(name)
    _check_description(description)
    for uri, what in (
        (notification_queue_uri, "notificationQueueUri"),
        (export_model_container_uri, "exportModelContainerUri"),
    ):
        check_length(uri, MAX_URI_LENGTH, "BadRequestInvalid", what)
    _check_notification_queue(account, settings, notification_queue_uri)
    domain, classification = _resolve_domain_settings(domain_id, classification_type)
    project = ProjectRecord(
        id=new_id(),
        name=name,
        description=description or "",
        domain_id=domain,
        classification_type=classification,
        target_export_platforms=_check_export_platforms(target_export_platforms or []),
        notification_queue_uri=notification_queue_uri or None,
        export_model_container_uri=export_model_container_uri,
        importing_since=utcnow() if importing_owner else None,
        importing_owner=importing_owner,
    )
    store = ProjectStore(account)
    with claimed(project_name_claims(account), name, project.id, _bears(account, name), _name_taken(name)):
        _check_unclaimed(store, name, project.id)
        return store.create(project)


@dataclass(frozen=True)
class ProjectChanges:
    """What UpdateProject may change; None leaves a field as it is (the SDK sends the whole project back, so
    every writable field arrives, and read-only ones are not here). An empty queue URI removes the queue."""

    name: str | None = None
    description: str | None = None
    domain_id: str | None = None
    classification_type: str | None = None
    target_export_platforms: list[str] | None = None
    augmentation_methods: Mapping[str, bool] | None = None
    notification_queue_uri: str | None = None
    export_model_container_uri: str | None = None
    publish_better_retrains: bool | None = None  # Seer's extension (ProjectRecord)
    unknown_detection: bool | None = None


def _replaced_uri(current: str | None, given: str | None, what: str) -> str | None:
    """A URI setting after an update: None keeps it, "" removes it, a new one is length-checked."""
    uri = current if given is None else given or None
    if uri != current:
        check_length(uri, MAX_URI_LENGTH, "BadRequestInvalid", what)
    return uri


def update_project(
    account: StorageAccount, settings: Settings, project_id: str, changes: ProjectChanges
) -> ProjectRecord:
    current = get_project(account, project_id)
    new_name = _check_project_name(changes.name) if changes.name is not None else current.name
    _check_description(changes.description)
    queue_uri = _replaced_uri(
        current.notification_queue_uri, changes.notification_queue_uri, "notificationQueueUri"
    )
    if queue_uri != current.notification_queue_uri:
        _check_notification_queue(account, settings, queue_uri)
    container_uri = _replaced_uri(
        current.export_model_container_uri, changes.export_model_container_uri, "exportModelContainerUri"
    )
    domain, classification = _resolve_domain_settings(
        changes.domain_id or current.domain_id, changes.classification_type or current.classification_type
    )
    if domain_of(domain).type != domain_of(current.domain_id).type:
        raise bad_request(
            "BadRequestProjectUnsupportedDomainTypeChange",
            "A project cannot change between classification and object detection domains.",
        )
    platforms = (
        _check_export_platforms(changes.target_export_platforms)
        if changes.target_export_platforms is not None
        else current.target_export_platforms
    )
    methods = (
        updated_methods(current.augmentation_methods, changes.augmentation_methods)
        if changes.augmentation_methods is not None
        else current.augmentation_methods
    )

    def apply(project: ProjectRecord) -> ProjectRecord:
        return project.model_copy(
            update={
                "name": new_name,
                "description": changes.description
                if changes.description is not None
                else project.description,
                "domain_id": domain,
                "classification_type": classification,
                "target_export_platforms": platforms,
                "augmentation_methods": methods,
                "notification_queue_uri": queue_uri,
                "export_model_container_uri": container_uri,
                "publish_better_retrains": project.publish_better_retrains
                if changes.publish_better_retrains is None
                else changes.publish_better_retrains,
                "unknown_detection": project.unknown_detection
                if changes.unknown_detection is None
                else changes.unknown_detection,
                "last_modified": utcnow(),
            }
        )

    store = ProjectStore(account)
    bears, taken = _bears(account, new_name), _name_taken(new_name)
    with renamed(project_name_claims(account), current.name, new_name, current.id, bears, taken):
        if new_name != current.name:
            _check_unclaimed(store, new_name, current.id)
        updated = store.update(current.id, apply)
        if updated is None:
            raise project_not_found(project_id)
    return updated


def delete_project(account: StorageAccount, project_id: str) -> None:
    """Refused while an iteration is published, as Custom Vision does. The project is marked as deleting first
    (from then on it is not found), then everything it owns goes, then its row: a crash midway leaves a tombstone
    that the sweeper finishes."""
    project = get_project(account, project_id)
    published = [i.name for i in IterationStore(account).list(project.id) if i.publish_name]
    if published:
        raise bad_request(
            "BadRequestIterationIsPublished",
            f"Unpublish {', '.join(published)} before deleting the project.",
        )
    ProjectStore(account).update(
        project.id, lambda p: None if p.deleting else p.model_copy(update={"deleting_since": utcnow()})
    )
    project_name_claims(account).release(
        project.name, project.id
    )  # the name is free once the project is gone
    purge_project(account, project.id)


def purge_project(account: StorageAccount, project_id: str) -> None:
    """Everything stored under `project_id` and its tag and iteration name claims, then the project row (a
    tombstone, or none at all)."""
    Housekeeping(account).purge(project_id)
    tag_name_claims(account, project_id).release_all()
    iteration_name_claims(account, project_id).release_all()
    ProjectStore(account).delete(project_id)
