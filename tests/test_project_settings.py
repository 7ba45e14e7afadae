"""A project's settings as Custom Vision reports them, and UpdateProject changing every writable one (issue 11):
`thumbnailUri`, `useNegativeSet`, `detectionParameters`, `imageProcessingSettings` (its augmentation methods are
snapshotted into each iteration, which the training job then uses), the export platforms, the classification
type, the domain, and the storage URIs, through the official SDK and plain HTTP on real Azurite."""

from __future__ import annotations

import json
import urllib.request
import uuid

from fastapi.testclient import TestClient

from pipeline.contract.detection import DETECTION
from pipeline.core.augmentation import DEFAULT_METHODS
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from tests.conftest import PROJECTS
from tests.images import pattern_image

GENERAL_COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"
DETECTION_DOMAIN = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"
DEFAULTS = {str(name): on for name, on in DEFAULT_METHODS.items()}


def test_new_projects_report_every_setting(trainer) -> None:
    classifier = trainer.create_project(f"settings-{uuid.uuid4()}")
    detector = trainer.create_project(f"settings-od-{uuid.uuid4()}", domain_id=DETECTION_DOMAIN)
    try:
        assert classifier.settings.use_negative_set is True
        assert classifier.settings.detection_parameters == ""
        assert classifier.settings.image_processing_settings.augmentation_methods == DEFAULTS
        assert classifier.thumbnail_uri is None
        assert detector.settings.use_negative_set is False
        assert json.loads(detector.settings.detection_parameters) == {
            "stride": DETECTION.stride,
            "maxDetections": DETECTION.max_detections,
            "candidates": DETECTION.candidates,
            "nmsIou": DETECTION.nms_iou,
            "nmsRounds": DETECTION.nms_rounds,
            "minScore": DETECTION.min_score,
        }
    finally:
        trainer.delete_project(classifier.id)
        trainer.delete_project(detector.id)


def test_thumbnail_uri_shows_an_image_of_the_project(client: TestClient) -> None:
    project = client.post(PROJECTS, params={"name": f"thumb-{uuid.uuid4()}"}).json()
    at = f"{PROJECTS}/{project['id']}"
    files = [("imageData", ("a.jpg", pattern_image(0, 1), "image/jpeg"))]
    image = client.post(f"{at}/images", files=files).json()["images"][0]["image"]
    try:
        uri = client.get(at).json()["thumbnailUri"]
        assert uri is not None
        assert uri.split("?")[0] == image["thumbnailUri"].split("?")[0]
        with urllib.request.urlopen(uri, timeout=10) as response:  # a read-only SAS URL on loopback Azurite
            assert response.headers["Content-Type"] == "image/jpeg"
        listed = next(p for p in client.get(PROJECTS).json() if p["id"] == project["id"])
        assert listed["thumbnailUri"] is not None
        client.delete(f"{at}/images", params={"imageIds": image["id"]})
        assert client.get(at).json()["thumbnailUri"] is None
    finally:
        client.delete(at)


def test_update_project_changes_every_writable_field(trainer, account: StorageAccount) -> None:
    """The SDK's pattern: get the project, change fields, send it all back. Read-only settings sent back are
    ignored; each writable one is kept, and the augmentation methods reach the next iteration."""
    project = trainer.create_project(f"update-{uuid.uuid4()}", classification_type="Multiclass")
    try:
        project.name = f"renamed-{uuid.uuid4()}"
        project.description = "every field"
        project.settings.domain_id = GENERAL_COMPACT
        project.settings.classification_type = "Multilabel"
        project.settings.target_export_platforms = ["ONNX"]
        project.settings.image_processing_settings.augmentation_methods = {"ROTATION": True, "scaling": False}
        project.settings.use_negative_set = False  # read-only: ignored
        project.settings.detection_parameters = "ignored"
        updated = trainer.update_project(project.id, project)

        again = trainer.get_project(project.id)
        for seen in (updated, again):
            assert seen.name == project.name
            assert seen.description == "every field"
            assert seen.settings.domain_id == GENERAL_COMPACT
            assert seen.settings.classification_type == "Multilabel"
            assert seen.settings.target_export_platforms == ["ONNX"]
            assert seen.settings.image_processing_settings.augmentation_methods == DEFAULTS | {
                "rotation": True,
                "scaling": False,
            }
            assert seen.settings.use_negative_set is True
            assert seen.settings.detection_parameters == ""

        tags = [trainer.create_tag(project.id, name) for name in ("a", "b")]
        for t, tag in enumerate(tags):
            files = [("imageData", (f"{i}.jpg", pattern_image(t, i), "image/jpeg")) for i in range(5)]
            _upload(trainer, project.id, tag.id, files)
        iteration = trainer.train_project(project.id)
        stored = IterationStore(account).get(project.id, iteration.id)
        assert stored is not None  # queued where no job listens here: the snapshot is what the job will use
        assert stored.augmentation_methods == again.settings.image_processing_settings.augmentation_methods
    finally:
        trainer.delete_project(project.id)


def _upload(trainer, project_id: str, tag_id: str, files) -> None:
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageFileCreateBatch,
        ImageFileCreateEntry,
    )

    entries = [ImageFileCreateEntry(name=name, contents=data) for _, (name, data, _) in files]
    trainer.create_images_from_files(project_id, ImageFileCreateBatch(images=entries, tag_ids=[tag_id]))


def test_bad_settings_are_refused_and_change_nothing(client: TestClient) -> None:
    project = client.post(PROJECTS, params={"name": f"bad-settings-{uuid.uuid4()}"}).json()
    at = f"{PROJECTS}/{project['id']}"
    try:
        for settings, code in (
            (
                {"imageProcessingSettings": {"augmentationMethods": {"mirror": True}}},
                "BadRequestProjectImagePreprocessingSettings",
            ),
            (
                {"imageProcessingSettings": {"augmentationMethods": {"rotation": "sometimes"}}},
                "BadRequestInvalid",
            ),
            ({"targetExportPlatforms": ["Nowhere"]}, "BadRequestProjectUnsupportedExportPlatform"),
            ({"exportModelContainerUri": "x" * 5000}, "BadRequestInvalid"),
        ):
            response = client.patch(at, json={"name": project["name"], "settings": settings})
            assert response.status_code == 400, response.text
            assert response.json()["code"] == code, response.text
        assert client.get(at).json()["settings"] == project["settings"]
    finally:
        client.delete(at)
