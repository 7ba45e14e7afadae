"""Tags: names unique per project, at most one Negative tag, image counts, and untagging on delete."""

from __future__ import annotations

import unicodedata

from pipeline.core.errors import CustomVisionError, bad_request, tag_not_found
from pipeline.core.limits import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, check_length
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import TagType, new_id, parse_choice
from pipeline.services.iterations import get_iteration
from pipeline.services.names import claimed, renamed, tag_name_claims
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.image_index import tag_view
from pipeline.store.images import ImageStore
from pipeline.store.records import TagRecord
from pipeline.store.tags import TagStore


def get_tag(account: StorageAccount, project_id: str, tag_id: str) -> TagRecord:
    tag = TagStore(account).get(project_id, tag_id.lower())
    if tag is None:
        raise tag_not_found(tag_id)
    return tag


def project_tags(account: StorageAccount, project_id: str) -> dict[str, TagRecord]:
    """The project's tags by id."""
    return {t.id: t for t in TagStore(account).list(project_id)}


def tag_names(account: StorageAccount, project_id: str) -> dict[str, str]:
    return {t.id: t.name for t in TagStore(account).list(project_id)}


def _check_tag_name(name: str | None) -> str:
    """The name in Unicode's composed form (so names that look the same are the same), without control characters."""
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise bad_request("BadRequestTagName", f"Tag name must be 1 to {MAX_NAME_LENGTH} characters.")
    if any(unicodedata.category(character) == "Cc" for character in name):
        raise bad_request("BadRequestTagName", "Tag names cannot contain control characters.")
    return name


def _name_key(name: str) -> str:
    """Tag names compare case-insensitively, in Unicode's composed form."""
    return unicodedata.normalize("NFC", name).lower()


def _same_name(a: str, b: str) -> bool:
    return _name_key(a) == _name_key(b)


def _name_taken(name: str) -> CustomVisionError:
    return bad_request("BadRequestTagNameNotUnique", f"A tag named '{name}' already exists in this project.")


def _bears(account: StorageAccount, project_id: str, name: str):
    """Whether a tag of the project exists and is called `name` (in any case)."""

    def bears(tag_id: str) -> bool:
        tag = TagStore(account).get(project_id, tag_id)
        return tag is not None and _same_name(tag.name, name)

    return bears


def _check_description(description: str | None) -> None:
    check_length(description, MAX_DESCRIPTION_LENGTH, "BadRequestTagDescription", "A tag description")


# Tag types a project holds at most one of, with the spec's code for a second.
_ONE_PER_PROJECT = {
    TagType.NEGATIVE: "BadRequestMultipleNegativeTag",
    TagType.GENERAL_PRODUCT: "BadRequestMultipleGeneralProductTag",
}


def _check_tag_type(tag_type: str | None) -> TagType:
    return parse_choice(TagType, tag_type, "type", default=TagType.REGULAR, code="BadRequestTagType")


def _check_unique(tags: list[TagRecord], name: str, tag_type: TagType, exclude_id: str | None = None) -> None:
    others = [t for t in tags if t.id != exclude_id]
    if any(_same_name(t.name, name) for t in others):  # tags stored before names were claimed hold no claim
        raise _name_taken(name)
    if tag_type in _ONE_PER_PROJECT and any(t.type == tag_type for t in others):
        raise bad_request(_ONE_PER_PROJECT[tag_type], f"A project can have only one {tag_type} tag.")


def create_tag(
    account: StorageAccount,
    settings: Settings,
    project_id: str,
    name: str | None,
    description: str | None = None,
    tag_type: str | None = None,
) -> TagRecord:
    project = get_project(account, project_id)
    name, checked_type = _check_tag_name(name), _check_tag_type(tag_type)
    _check_description(description)
    store = TagStore(account)
    existing = store.list(project.id)
    if len(existing) >= settings.max_tags_per_project:
        raise bad_request(
            "BadRequestExceedTagPerProjectLimit",
            f"A project can have at most {settings.max_tags_per_project} tags.",
        )
    tag = TagRecord(
        id=new_id(), project_id=project.id, name=name, description=description or "", type=checked_type
    )
    claims, bears = tag_name_claims(account, project.id), _bears(account, project.id, name)
    with claimed(claims, _name_key(name), tag.id, bears, _name_taken(name)):
        _check_unique(existing, name, checked_type)
        return store.create(tag)


def find_tag(account: StorageAccount, project_id: str, name: str) -> TagRecord | None:
    """The tag with this name (case-insensitive), if any (the drop folder names tags, not ids)."""
    return next((t for t in TagStore(account).list(project_id) if _same_name(t.name, name.strip())), None)


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
    _check_description(description)

    def apply(tag: TagRecord) -> TagRecord:
        return tag.model_copy(
            update={
                "name": new_name,
                "description": description if description is not None else tag.description,
                "type": new_type,
            }
        )

    claims, bears = tag_name_claims(account, project.id), _bears(account, project.id, new_name)
    old, new = _name_key(current.name), _name_key(new_name)
    with renamed(claims, old, new, current.id, bears, _name_taken(new_name)):
        _check_unique(TagStore(account).list(project.id), new_name, new_type, exclude_id=current.id)
        updated = TagStore(account).update(project.id, current.id, apply)
        if updated is None:
            raise tag_not_found(tag_id)
    return updated


def _delete(account: StorageAccount, tag: TagRecord) -> None:
    """Remove the tag's row, then its name claim."""
    TagStore(account).delete(tag.project_id, tag.id)
    tag_name_claims(account, tag.project_id).release(_name_key(tag.name), tag.id)


def delete_tag(account: StorageAccount, project_id: str, tag_id: str) -> None:
    """Untag every image first (so no image points at a missing tag), then remove the tag."""
    project = get_project(account, project_id)
    tag = get_tag(account, project.id, tag_id)
    images = ImageStore(account)
    for image_id in list(images.index(project.id).ids(tag_view(tag.id))):
        images.update(
            project.id,
            image_id,
            lambda img: img.model_copy(
                update={
                    "tags": [t for t in img.tags if t.tag_id != tag.id],
                    "regions": [r for r in img.regions if r.tag_id != tag.id],
                }
            ),
        )
    _delete(account, tag)


def _iteration_counts(
    account: StorageAccount, project_id: str, iteration_id: str | None
) -> dict[str, int] | None:
    """Images per tag in the iteration's training set; None for the workspace, and for iterations recorded
    before their counts were kept (they report the workspace's)."""
    return get_iteration(account, project_id, iteration_id).tag_image_counts if iteration_id else None


def tags_with_counts(
    account: StorageAccount, project_id: str, iteration_id: str | None = None
) -> list[tuple[TagRecord, int]]:
    """GetTags; with `iterationId`, the tags that iteration trained on and their counts at the time."""
    project = get_project(account, project_id)
    recorded = _iteration_counts(account, project.id, iteration_id)
    counts = recorded if recorded is not None else ImageStore(account).tag_counts(project.id)
    tags = TagStore(account).list(project.id)
    return [(t, counts.get(t.id, 0)) for t in tags if recorded is None or t.id in recorded]


def tag_with_count(
    account: StorageAccount, project_id: str, tag_id: str, iteration_id: str | None = None
) -> tuple[TagRecord, int]:
    """GetTag; with `iterationId`, its count in that iteration's training set (NotFoundTag if it had none)."""
    tag = get_tag(account, get_project(account, project_id).id, tag_id)
    recorded = _iteration_counts(account, tag.project_id, iteration_id)
    if recorded is None:
        return tag, ImageStore(account).tag_counts(tag.project_id).get(tag.id, 0)
    if tag.id not in recorded:
        raise tag_not_found(tag_id)
    return tag, recorded[tag.id]


def delete_tags_without_images(account: StorageAccount, project_id: str, tag_ids: list[str]) -> None:
    """Remove those of `tag_ids` that no image carries (tags made for a file that was then refused)."""
    counts = ImageStore(account).tag_counts(project_id)
    store = TagStore(account)
    for tag_id in tag_ids:
        tag = store.get(project_id, tag_id)
        if tag is not None and not counts.get(tag_id):
            _delete(account, tag)
