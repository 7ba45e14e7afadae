"""ExportProject: write the project's package (pipeline.contract.project_package) and answer the token that
imports it, with the counts Custom Vision's ProjectExport reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from pipeline.contract.project_package import (
    ImportToken,
    PackagedImage,
    PackagedRegion,
    PackagedTag,
    ProjectPackage,
)
from pipeline.services.projects import get_project
from pipeline.services.tags import project_tags
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.project_exports import ProjectExportStore
from pipeline.store.records import ImageRecord, utcnow

# How long a token (its package and image links) can be imported. Older packages are removed at the next export.
LINK_HOURS = 24
# ImportProject's cost as bench/project_import.py measured it on 2 cores: a fixed part plus per image.
_IMPORT_BASE_MS = 500
_IMPORT_PER_IMAGE_MS = 52


@dataclass(frozen=True)
class ProjectExportSummary:
    iteration_count: int
    image_count: int
    tag_count: int
    region_count: int
    estimated_import_time_ms: int
    token: str


def _packaged(image: ImageRecord, store: ImageStore) -> PackagedImage:
    return PackagedImage(
        url=store.blob_url(image.original_blob, hours=LINK_HOURS),
        sha256=image.content_hash,
        width=image.width,
        height=image.height,
        tag_ids=[t.tag_id for t in image.tags],
        regions=[
            PackagedRegion(**r.model_dump(include={"tag_id", "left", "top", "width", "height"}))
            for r in image.regions
        ],
        metadata=image.metadata,
    )


def export_project(account: StorageAccount, project_id: str) -> ProjectExportSummary:
    project = get_project(account, project_id)
    store = ImageStore(account)
    images = sorted(store.iter(project.id), key=lambda i: (i.seq is None, i.seq or 0, i.created))
    package = ProjectPackage(
        exported_at=utcnow(),
        name=project.name,
        description=project.description,
        domain_id=project.domain_id,
        classification_type=project.classification_type,
        target_export_platforms=project.target_export_platforms,
        augmentation_methods=project.augmentation_methods,
        publish_better_retrains=project.publish_better_retrains,
        unknown_detection=project.unknown_detection,
        tags=[
            PackagedTag(id=t.id, name=t.name, description=t.description, type=t.type)
            for t in project_tags(account, project.id).values()
        ],
        images=[_packaged(image, store) for image in images],
    )
    data = package.model_dump_json().encode()
    sha256 = hashlib.sha256(data).hexdigest()
    exports = ProjectExportStore(account)
    exports.drop_older_than(project.id, timedelta(hours=LINK_HOURS))
    name = exports.put(project.id, sha256, data)
    return ProjectExportSummary(
        iteration_count=0,  # trained iterations stay behind: the importer trains its own
        image_count=len(package.images),
        tag_count=len(package.tags),
        region_count=sum(len(i.regions) for i in package.images),
        estimated_import_time_ms=_IMPORT_BASE_MS + _IMPORT_PER_IMAGE_MS * len(package.images),
        token=ImportToken(url=exports.read_url(name, LINK_HOURS), sha256=sha256).encode(),
    )
