"""Copy one project from the source endpoint into the target: the project (found by name, else created with the
source's settings and domain), its tags (matched by name, created with their type and description when missing)
and every image with its tags, regions and metadata, read at original resolution from `originalImageUri`.

Resumable by content: a re-run uploads every image again and the target answers OKDuplicate for bytes it already
holds (Custom Vision and Seer both do), which is counted as skipped; an image is stored with its tags, regions and
metadata in one step, so one that is there is complete. Nothing extra (no marker metadata) is written."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from pipeline.migrate.api import ApiError, RemoteProject, SourceImage, TrainingApi, Upload
from pipeline.migrate.report import ProjectReport

MAX_BATCH_IMAGES = 64  # CreateImagesFromFiles' limit
MAX_BATCH_BYTES = 32 * 1024 * 1024  # keeps one request's body (base64) well under the endpoints' caps


# Seer's project settings beyond Custom Vision's (wire field -> JSON name), copied between Seer endpoints.
SEER_SETTINGS = {"publish_better_retrains": "publishBetterRetrains", "unknown_detection": "unknownDetection"}


def _metadata_key(image: SourceImage) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((image.metadata or {}).items()))


def _batches(images: Iterable[SourceImage], size: int) -> Iterator[list[SourceImage]]:
    """Consecutive images with the same metadata (a CreateImagesFromFiles batch shares it), `size` at most; reads
    the listing as it goes (a project's listing may be long)."""
    batch: list[SourceImage] = []
    for image in images:
        if batch and (len(batch) == size or _metadata_key(image) != _metadata_key(batch[0])):
            yield batch
            batch = []
        batch.append(image)
    if batch:
        yield batch


class ProjectCopier:
    def __init__(
        self,
        source: TrainingApi,
        target: TrainingApi,
        batch_size: int = MAX_BATCH_IMAGES,
        progress: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.source = source
        self.target = target
        self.batch_size = min(batch_size, MAX_BATCH_IMAGES)
        self.progress = progress

    def target_project(self, project: RemoteProject) -> RemoteProject:
        """The target project of that name (a re-run resumes it), else a new one with the source's settings."""
        existing = next((p for p in self.target.projects() if p.name == project.name), None)
        if existing is None:
            return self.target.create_project(project)
        if existing.settings.domain_id != project.settings.domain_id:
            raise ApiError(
                "DomainMismatch",
                f"the target's project '{project.name}' has domain {existing.settings.domain_id}, "
                f"the source's {project.settings.domain_id}",
            )
        return existing

    def tag_map(self, source_id: str, target_id: str) -> dict[str, str]:
        """Source tag id -> target tag id, creating the target's missing tags."""
        have = {t.name: t.id for t in self.target.tags(target_id)}
        mapping = {}
        for tag in self.source.tags(source_id):
            if tag.name not in have:
                have[tag.name] = self.target.create_tag(target_id, tag).id
            mapping[tag.id] = have[tag.name]
        return mapping

    def copy(self, project: RemoteProject, report: ProjectReport) -> RemoteProject | None:
        """Copies `project`, recording outcomes in `report`; a problem is reported, never raised."""
        try:
            target = self.target_project(project)
            self._copy_settings(project, target, report)
            tags = self.tag_map(project.id, target.id)
            report.tags = len(tags)
            for batch in _batches(self.source.images(project.id), self.batch_size):
                self._copy_batch(batch, target.id, tags, report)
                self.progress(len(batch))
            return target
        except (ApiError, ValueError) as exc:  # ValueError: an answer that is not what the API describes
            report.fail(f"project: {exc}")
            return None

    def _copy_settings(self, project: RemoteProject, target: RemoteProject, report: ProjectReport) -> None:
        """The source's augmentation methods and Seer's own settings (`publishBetterRetrains`, `unknownDetection`:
        only a Seer source has them), where the target's differ; the images are copied even if the target refuses
        them (its augmentation methods are its own vocabulary)."""
        wanted, have = project.settings, target.settings
        changes: dict[str, object] = {}
        methods = wanted.image_processing_settings and wanted.image_processing_settings.augmentation_methods
        if methods and methods != (
            have.image_processing_settings and have.image_processing_settings.augmentation_methods
        ):
            changes["imageProcessingSettings"] = {"augmentationMethods": dict(methods)}
        for field, name in SEER_SETTINGS.items():
            value = getattr(wanted, field)
            if value is not None and value != getattr(have, field):
                changes[name] = value
        if not changes:
            return
        try:
            self.target.update_settings(target, changes)
        except ApiError as exc:
            report.fail(f"project settings: {exc}")

    def _upload(self, image: SourceImage, tags: dict[str, str], report: ProjectReport) -> Upload | None:
        try:
            data = self.source.download(image.original_image_uri)
        except ApiError as exc:
            report.fail(f"image {image.id}: {exc}")
            return None
        region_tags = {r.tag_id for r in image.regions or ()}
        try:
            regions = tuple(r.model_copy(update={"tag_id": tags[r.tag_id]}) for r in image.regions or ())
            whole = tuple(tags[t.tag_id] for t in image.tags or () if t.tag_id not in region_tags)
        except KeyError as exc:
            report.fail(f"image {image.id}: the source lists tag {exc} that its project does not have")
            return None
        return Upload(name=image.id, data=data, tag_ids=whole, regions=regions)

    def _copy_batch(
        self, batch: list[SourceImage], target_id: str, tags: dict[str, str], report: ProjectReport
    ) -> None:
        uploads: list[tuple[SourceImage, Upload]] = []
        for image in batch:
            upload = self._upload(image, tags, report)
            if upload is not None:
                uploads.append((image, upload))
        for chunk in _by_bytes(uploads):
            try:
                results = self.target.create_images(target_id, [u for _, u in chunk], batch[0].metadata or {})
            except (ApiError, ValueError) as exc:
                for image, _ in chunk:
                    report.fail(f"image {image.id}: {exc}")
                continue
            for (image, upload), result in zip(chunk, results, strict=True):
                if result.status == "OK":
                    report.copied += 1
                    report.regions += len(upload.regions)
                elif result.status == "OKDuplicate":
                    report.skipped += 1
                    report.regions += len(upload.regions)
                else:
                    report.fail(f"image {image.id}: {result.status}")


def _by_bytes(uploads: list[tuple[SourceImage, Upload]]) -> Iterator[list[tuple[SourceImage, Upload]]]:
    chunk: list[tuple[SourceImage, Upload]] = []
    size = 0
    for pair in uploads:
        if chunk and size + len(pair[1].data) > MAX_BATCH_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(pair)
        size += len(pair[1].data)
    if chunk:
        yield chunk
