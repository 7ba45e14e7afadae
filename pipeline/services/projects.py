"""Projects and tags: validation and the rules Custom Vision applies, over the storage layer."""

from __future__ import annotations

import uuid

from pipeline.core.domains import DEFAULT_CLASSIFICATION_DOMAIN, EXPORT_PLATFORMS, domain_of, find_domain
from pipeline.core.errors import bad_request, project_not_found, tag_not_found
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import DomainType
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.projects import ProjectStore
from pipeline.store.records import ProjectRecord, TagRecord, utcnow
from pipeline.store.tags import TagStore

CLASSIFICATION_TYPES = ("Multiclass", "Multilabel")
TAG_TYPES = ("Regular", "Negative")
MAX_NAME_LENGTH = 256


def new_id() -> str:
    return str(uuid.uuid4())


def get_project(account: StorageAccount, project_id: str) -> ProjectRecord:
    project = ProjectStore(account).get(project_id.lower())
    if project is None:
        raise project_not_found(project_id)
    return project


def find_project(account: StorageAccount, id_or_name: str) -> ProjectRecord | None:
    """A project by id, else by exact name (the drop folder accepts either)."""
    store = ProjectStore(account)
    try:
        project = store.get(str(uuid.UUID(id_or_name)))
    except ValueError:
        project = None
    return project or store.find_by_name(id_or_name)


def _check_project_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise bad_request("BadRequestProjectName", f"Project name must be 1 to {MAX_NAME_LENGTH} characters.")
    return name


def _resolve_domain_settings(
    domain_id: str | None, classification_type: str | None
) -> tuple[str, str | None]:
    domain = find_domain(domain_id or DEFAULT_CLASSIFICATION_DOMAIN)
    if domain is None:
        raise bad_request("BadRequestProjectUnknownDomain", f"Domain {domain_id} is not a known domain.")
    if domain.type != DomainType.CLASSIFICATION:
        return domain.id, None
    chosen = classification_type or "Multiclass"
    match = next((c for c in CLASSIFICATION_TYPES if c.lower() == chosen.lower()), None)
    if match is None:
        raise bad_request(
            "BadRequestProjectUnknownClassification",
            f"Classification type {classification_type} is unknown; use Multiclass or Multilabel.",
        )
    return domain.id, match


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
    name: str | None,
    description: str | None = None,
    domain_id: str | None = None,
    classification_type: str | None = None,
    target_export_platforms: list[str] | None = None,
    notification_queue_uri: str | None = None,
    export_model_container_uri: str | None = None,
) -> ProjectRecord:
    name = _check_project_name(name)
    domain, classification = _resolve_domain_settings(domain_id, classification_type)
    store = ProjectStore(account)
    if store.find_by_name(name) is not None:
        raise bad_request("BadRequestProjectNameNotUnique", f"A project named '{name}' already exists.")
    project = ProjectRecord(
        id=new_id(),
        name=name,
        description=description or "",
        domain_id=domain,
        classification_type=classification,
        target_export_platforms=_check_export_platforms(target_export_platforms or []),
        notification_queue_uri=notification_queue_uri,
        export_model_container_uri=export_model_container_uri,
    )
    return store.create(project)


def update_project(
    account: StorageAccount,
    project_id: str,
    name: str | None,
    description: str | None,
    domain_id: str | None,
    classification_type: str | None,
    target_export_platforms: list[str] | None,
) -> ProjectRecord:
    current = get_project(account, project_id)
    new_name = _check_project_name(name) if name is not None else current.name
    if new_name != current.name:
        other = ProjectStore(account).find_by_name(new_name)
        if other is not None and other.id != current.id:
            raise bad_request(
                "BadRequestProjectNameNotUnique", f"A project named '{new_name}' already exists."
            )
    domain, classification = _resolve_domain_settings(
        domain_id or current.domain_id, classification_type or current.classification_type
    )
    if domain_of(domain).type != domain_of(current.domain_id).type:
        raise bad_request(
            "BadRequestProjectUnsupportedDomainTypeChange",
            "A project cannot change between classification and object detection domains.",
        )
    platforms = (
        _check_export_platforms(target_export_platforms)
        if target_export_platforms is not None
        else current.target_export_platforms
    )

    def apply(project: ProjectRecord) -> ProjectRecord:
        return project.model_copy(
            update={
                "name": new_name,
                "description": description if description is not None else project.description,
                "domain_id": domain,
                "classification_type": classification,
                "target_export_platforms": platforms,
                "last_modified": utcnow(),
            }
        )

    updated = ProjectStore(account).update(current.id, apply)
    if updated is None:
        raise project_not_found(project_id)
    return updated


def delete_project(account: StorageAccount, project_id: str) -> None:
    """Images first, then tags, then the project row: a crash midway leaves a project that can be deleted again."""
    project = get_project(account, project_id)
    images = ImageStore(account)
    for image in images.list(project.id):
        images.delete(image)
    TagStore(account).delete_project(project.id)
    ProjectStore(account).delete(project.id)


# --- tags ---------------------------------------------------------------------------------------------------


def get_tag(account: StorageAccount, project_id: str, tag_id: str) -> TagRecord:
    tag = TagStore(account).get(project_id, tag_id.lower())
    if tag is None:
        raise tag_not_found(tag_id)
    return tag


def _check_tag_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise bad_request("BadRequestTagName", f"Tag name must be 1 to {MAX_NAME_LENGTH} characters.")
    return name


def _check_tag_type(tag_type: str | None) -> str:
    chosen = tag_type or "Regular"
    match = next((t for t in TAG_TYPES if t.lower() == chosen.lower()), None)
    if match is None:
        raise bad_request("BadRequestTagType", f"Tag type {tag_type} is unknown; use Regular or Negative.")
    return match


def _check_unique(tags: list[TagRecord], name: str, tag_type: str, exclude_id: str | None = None) -> None:
    others = [t for t in tags if t.id != exclude_id]
    if any(t.name.lower() == name.lower() for t in others):
        raise bad_request(
            "BadRequestTagNameNotUnique", f"A tag named '{name}' already exists in this project."
        )
    if tag_type == "Negative" and any(t.type == "Negative" for t in others):
        raise bad_request("BadRequestMultipleNegativeTag", "A project can have only one Negative tag.")


def create_tag(
    account: StorageAccount,
    settings: Settings,
    project_id: str,
    name: str | None,
    description: str | None = None,
    tag_type: str | None = None,
) -> TagRecord:
    project = get_project(account, project_id)
    name, tag_type = _check_tag_name(name), _check_tag_type(tag_type)
    store = TagStore(account)
    existing = store.list(project.id)
    if len(existing) >= settings.max_tags_per_project:
        raise bad_request(
            "BadRequestExceedTagPerProjectLimit",
            f"A project can have at most {settings.max_tags_per_project} tags.",
        )
    _check_unique(existing, name, tag_type)
    return store.create(
        TagRecord(id=new_id(), project_id=project.id, name=name, description=description or "", type=tag_type)
    )


def find_or_create_tag(account: StorageAccount, settings: Settings, project_id: str, name: str) -> TagRecord:
    """The tag with this name (case-insensitive), created as Regular if missing (used by the drop folder)."""
    existing = next(
        (t for t in TagStore(account).list(project_id) if t.name.lower() == name.strip().lower()), None
    )
    return existing or create_tag(account, settings, project_id, name)


def update_tag(
    account: StorageAccount,
    project_id: str,
    tag_id: str,
    name: str | None,
    description: str | None,
    tag_type: str | None,
) -> TagRecord:
    project = get_project(account, project_id)
    current = get_tag(account, project.id, tag_id)
    new_name = _check_tag_name(name) if name is not None else current.name
    new_type = _check_tag_type(tag_type) if tag_type is not None else current.type
    _check_unique(TagStore(account).list(project.id), new_name, new_type, exclude_id=current.id)

    def apply(tag: TagRecord) -> TagRecord:
        return tag.model_copy(
            update={
                "name": new_name,
                "description": description if description is not None else tag.description,
                "type": new_type,
            }
        )

    updated = TagStore(account).update(project.id, current.id, apply)
    if updated is None:
        raise tag_not_found(tag_id)
    return updated


def delete_tag(account: StorageAccount, project_id: str, tag_id: str) -> None:
    """Untag every image first (so no image points at a missing tag), then remove the tag."""
    project = get_project(account, project_id)
    tag = get_tag(account, project.id, tag_id)
    images = ImageStore(account)
    for image in images.list(project.id):
        if tag.id in image.tag_ids:
            images.update(
                project.id,
                image.id,
                lambda img: img.model_copy(
                    update={
                        "tags": [t for t in img.tags if t.tag_id != tag.id],
                        "regions": [r for r in img.regions if r.tag_id != tag.id],
                    }
                ),
            )
    TagStore(account).delete(project.id, tag.id)


def list_tags_with_counts(account: StorageAccount, project_id: str) -> list[tuple[TagRecord, int]]:
    project = get_project(account, project_id)
    counts = ImageStore(account).tag_counts(project.id)
    return [(t, counts.get(t.id, 0)) for t in TagStore(account).list(project.id)]
