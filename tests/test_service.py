"""The whole service end to end, driven by the official SDK: function_app.py on the local host with real Azurite,
the training job as its own process, ONNX Runtime predictions. Mirrors the Custom Vision quickstart."""

from __future__ import annotations

import io
import json
import time
import uuid

import numpy as np
import onnxruntime as ort
import pytest
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    ImageIdCreateBatch,
    ImageIdCreateEntry,
    PredictionQueryToken,
)
from PIL import Image

from pipeline.contract.exports import SUPPORTED
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.vision.imaging import decode_image
from pipeline.vision.preprocessing import preprocess
from tests.images import make_image, pattern_image

COMPACT_DOMAIN = (
    "0732100f-1a38-4e49-a514-c9b44c697ab5"  # General (compact): EfficientNet-Lite0, fast in tests
)


def wait_until_trained(trainer, project_id: str, iteration_id: str, timeout: float = 240.0):
    """The quickstart's loop: poll get_iteration until training ends."""
    deadline = time.monotonic() + timeout
    while True:
        iteration = trainer.get_iteration(project_id, iteration_id)
        if iteration.status != "Training":
            return iteration
        assert time.monotonic() < deadline, "training did not finish in time"
        time.sleep(0.5)


def upload_two_classes(trainer, project_id: str, per_tag: int = 8) -> tuple[object, object]:
    warm = trainer.create_tag(project_id, "warm stripes")
    cool = trainer.create_tag(project_id, "cool discs")
    entries = [
        ImageFileCreateEntry(name=f"{kind}-{i}.jpg", contents=pattern_image(kind, i), tag_ids=[tag.id])
        for kind, tag in ((0, warm), (1, cool))
        for i in range(per_tag)
    ]
    summary = trainer.create_images_from_files(project_id, ImageFileCreateBatch(images=entries))
    assert summary.is_batch_successful
    return warm, cool


@pytest.fixture(scope="module")
def trained(service: str) -> dict:
    """One compact project trained once through the SDK and published, shared by the tests below."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    from tests.conftest import TRAINING_KEY

    trainer = CustomVisionTrainingClient(
        service, ApiKeyCredentials(in_headers={"Training-key": TRAINING_KEY})
    )
    project = trainer.create_project(f"quickstart-{uuid.uuid4()}", domain_id=COMPACT_DOMAIN)
    warm, cool = upload_two_classes(trainer, project.id)
    started = time.monotonic()
    iteration = trainer.train_project(project.id)
    assert iteration.status == "Training"
    iteration = wait_until_trained(trainer, project.id, iteration.id)
    assert iteration.status == "Completed", iteration.training_error_details
    trainer.publish_iteration(project.id, iteration.id, "quickstart", "seer-prediction-resource")
    return {
        "project": project,
        "iteration": trainer.get_iteration(project.id, iteration.id),
        "tags": {"warm": warm, "cool": cool},
        "seconds": time.monotonic() - started,
    }


def test_trained_iteration_reports_like_custom_vision(trained: dict, service_trainer) -> None:
    iteration = trained["iteration"]
    assert iteration.trained_at is not None
    assert iteration.training_time_in_minutes >= 1
    assert iteration.domain_id == COMPACT_DOMAIN
    assert iteration.exportable and iteration.exportable_to == [platform.value for platform in SUPPORTED]
    assert iteration.publish_name == "quickstart"
    with pytest.raises(CustomVisionErrorException) as refused:
        service_trainer.train_project(trained["project"].id)  # nothing changed since
    assert refused.value.error.code == "BadRequestTrainingNotNeeded"


def test_performance_metrics_and_threshold(trained: dict, service_trainer) -> None:
    project, iteration = trained["project"], trained["iteration"]
    default = service_trainer.get_iteration_performance(project.id, iteration.id)
    assert {t.name for t in default.per_tag_performance} == {"warm stripes", "cool discs"}
    assert default.precision >= 0.9 and default.recall >= 0.9 and default.average_precision >= 0.9
    for tag in default.per_tag_performance:
        assert 0.0 <= tag.precision_std_deviation <= 1.0 and 0.0 <= tag.recall_std_deviation <= 1.0
    strict = service_trainer.get_iteration_performance(project.id, iteration.id, threshold=0.999999)
    assert strict.recall < default.recall  # few out-of-fold probabilities reach 0.999999
    assert strict.average_precision == pytest.approx(
        default.average_precision
    )  # AP does not use the threshold

    count = service_trainer.get_image_performance_count(project.id, iteration.id)
    assert count == 16
    warm = trained["tags"]["warm"]
    only_warm = service_trainer.get_image_performances(project.id, iteration.id, tag_ids=[warm.id], take=50)
    assert len(only_warm) == 8
    for image in only_warm:
        assert [t.tag_id for t in image.tags] == [warm.id]
        assert image.predictions[0].probability >= image.predictions[-1].probability
        assert image.thumbnail_uri.startswith("http://127.0.0.1")

    with pytest.raises(CustomVisionErrorException) as refused:
        service_trainer.get_iteration_performance(project.id, iteration.id, threshold=1.5)
    assert refused.value.error.code == "BadRequestInvalid"


def test_prediction_api_matches_the_exported_model(
    trained: dict, service_predictor, settings: Settings, account: StorageAccount
) -> None:
    project, iteration = trained["project"], trained["iteration"]
    picture = pattern_image(1, 1000)
    result = service_predictor.classify_image(project.id, "quickstart", io.BytesIO(picture))
    assert result.project == project.id and result.iteration == iteration.id
    assert result.predictions[0].tag_name == "cool discs"
    assert [p.probability for p in result.predictions] == sorted(
        (p.probability for p in result.predictions), reverse=True
    )

    model = IterationStore(account).read_artefact(f"{project.id}/{iteration.id}/model.onnx")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])
    size = session.get_inputs()[0].shape[-1]
    image = decode_image(picture, settings, max_bytes=settings.max_prediction_image_bytes).image
    direct = session.run(None, {"data": preprocess(image, size)[None]})[0][0]
    by_tag = {p.tag_id: p.probability for p in result.predictions}
    for label, probability in zip(labels, direct, strict=True):
        assert by_tag[label["tag_id"]] == pytest.approx(float(probability), abs=1e-5)


def test_stored_predictions_and_adding_them_to_training(
    trained: dict, service_trainer, service_predictor
) -> None:
    project = trained["project"]
    kept = service_predictor.classify_image(project.id, "quickstart", io.BytesIO(pattern_image(0, 2001)))
    service_predictor.classify_image_with_no_store(
        project.id, "quickstart", io.BytesIO(pattern_image(0, 2002))
    )
    page = service_trainer.query_predictions(
        project.id, PredictionQueryToken(order_by="Newest", max_count=50)
    )
    ids = [p.id for p in page.results]
    assert kept.id in ids
    assert len(ids) == len(set(ids))
    stored = next(p for p in page.results if p.id == kept.id)
    assert stored.predictions[0].tag_name == "warm stripes"
    assert stored.thumbnail_uri and stored.original_image_uri

    first = service_trainer.query_predictions(project.id, PredictionQueryToken(max_count=1))
    assert len(first.results) == 1
    if len(ids) > 1:
        second = service_trainer.query_predictions(project.id, first.token)
        assert second.results and second.results[0].id != first.results[0].id

    warm = trained["tags"]["warm"]
    before = service_trainer.get_tagged_image_count(project.id)
    summary = service_trainer.create_images_from_predictions(
        project.id, ImageIdCreateBatch(images=[ImageIdCreateEntry(id=kept.id, tag_ids=[warm.id])])
    )
    assert summary.is_batch_successful
    assert service_trainer.get_tagged_image_count(project.id) == before + 1
    remaining = service_trainer.query_predictions(project.id, PredictionQueryToken(max_count=50))
    assert kept.id not in [p.id for p in remaining.results]

    other = service_predictor.classify_image(project.id, "quickstart", io.BytesIO(pattern_image(1, 2003)))
    service_trainer.delete_prediction(project.id, [other.id])
    remaining = service_trainer.query_predictions(project.id, PredictionQueryToken(max_count=50))
    assert other.id not in [p.id for p in remaining.results]


def test_quick_test_needs_no_publishing(trained: dict, service_trainer) -> None:
    project, iteration = trained["project"], trained["iteration"]
    result = service_trainer.quick_test_image(
        project.id, io.BytesIO(pattern_image(1, 3001)), iteration_id=iteration.id, store=False
    )
    assert result.predictions[0].tag_name == "cool discs"
    latest = service_trainer.quick_test_image(project.id, io.BytesIO(pattern_image(0, 3002)), store=False)
    assert latest.iteration == iteration.id and latest.predictions[0].tag_name == "warm stripes"


def test_url_prediction_and_quick_test(
    trained: dict, service_trainer, service_predictor, image_server
) -> None:
    base, served = image_server
    served["/cool.jpg"] = pattern_image(1, 5001)
    project = trained["project"]
    by_url = service_predictor.classify_image_url_with_no_store(project.id, "quickstart", f"{base}/cool.jpg")
    assert by_url.predictions[0].tag_name == "cool discs"
    quick = service_trainer.quick_test_image_url(project.id, f"{base}/cool.jpg", store=False)
    assert [p.probability for p in quick.predictions] == pytest.approx(
        [p.probability for p in by_url.predictions]
    )


def test_prediction_errors(trained: dict, service_predictor) -> None:
    from azure.cognitiveservices.vision.customvision.prediction.models import (
        CustomVisionErrorException as Error,
    )

    project = trained["project"]
    cases = [
        (lambda: service_predictor.classify_image(project.id, "no-such-name", io.BytesIO(make_image())), 404),
        (
            lambda: service_predictor.classify_image(project.id, "quickstart", io.BytesIO(b"not an image")),
            400,
        ),
        (lambda: service_predictor.detect_image(project.id, "quickstart", io.BytesIO(make_image())), 400),
        (
            lambda: service_predictor.classify_image(
                str(uuid.uuid4()), "quickstart", io.BytesIO(make_image())
            ),
            404,
        ),
        (lambda: service_predictor.classify_image_url(project.id, "quickstart", "file:///etc/passwd"), 400),
    ]
    for call, status in cases:
        with pytest.raises(Error) as refused:
            call()
        assert refused.value.response.status_code == status
        body = refused.value.response.json()
        assert body["code"] and body["message"]


def test_published_iteration_cannot_be_deleted_until_unpublished(trained: dict, service_trainer) -> None:
    project = trained["project"]
    second = service_trainer.train_project(project.id, force_train=True)
    second = wait_until_trained(service_trainer, project.id, second.id)
    assert second.status == "Completed"
    with pytest.raises(CustomVisionErrorException) as refused:
        service_trainer.publish_iteration(project.id, second.id, "quickstart", "resource")
    assert refused.value.error.code == "BadRequestInvalidPublishName"
    service_trainer.publish_iteration(project.id, second.id, "quickstart", "resource", overwrite=True)
    first = trained["iteration"]
    assert service_trainer.get_iteration(project.id, first.id).publish_name is None
    with pytest.raises(CustomVisionErrorException) as refused:
        service_trainer.delete_iteration(project.id, second.id)
    assert refused.value.error.code == "BadRequestIterationIsPublished"
    service_trainer.unpublish_iteration(project.id, second.id)
    service_trainer.delete_iteration(project.id, second.id)
    assert [i.id for i in service_trainer.get_iterations(project.id)] == [first.id]
    service_trainer.publish_iteration(project.id, first.id, "quickstart", "seer-prediction-resource")


def test_drop_folder_through_the_blob_trigger(service: str, service_trainer, account: StorageAccount) -> None:
    project = service_trainer.create_project(f"drop-{uuid.uuid4()}")
    uploads = account.container("uploads")
    uploads.upload_blob(f"{project.name}/daisies/one.jpg", make_image(seed=1), overwrite=True)
    uploads.upload_blob(f"{project.id}/daisies/two.png", make_image(seed=2, fmt="PNG"), overwrite=True)
    uploads.upload_blob(f"{project.id}/daisies/not-a-photo.jpg", b"hello", overwrite=True)
    deadline = time.monotonic() + 30
    while service_trainer.get_tagged_image_count(project.id) < 2:
        assert time.monotonic() < deadline, "dropped images were not ingested"
        time.sleep(0.3)
    tags = service_trainer.get_tags(project.id)
    assert [(t.name, t.image_count) for t in tags] == [("daisies", 2)]
    rejected = f"rejected/{project.id}/daisies/not-a-photo.jpg"
    while not uploads.get_blob_client(f"{rejected}.reason.json").exists():
        assert time.monotonic() < deadline, "the bad file was not set aside"
        time.sleep(0.3)
    reason = json.loads(uploads.download_blob(f"{rejected}.reason.json").readall())
    assert reason["code"] == "ErrorImageFormat"


def test_exported_model_metadata(trained: dict, account: StorageAccount) -> None:
    project, iteration = trained["project"], trained["iteration"]
    model = IterationStore(account).read_artefact(f"{project.id}/{iteration.id}/model.onnx")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert {label["name"] for label in json.loads(metadata["labels"])} == {"warm stripes", "cool discs"}
    preprocessing = json.loads(metadata["preprocessing"])
    assert preprocessing["size"] == session.get_inputs()[0].shape[-1]
    assert session.get_outputs()[0].name == "model_outputs"
    batch = np.stack(
        [
            preprocess(Image.open(io.BytesIO(pattern_image(k, 4000))).convert("RGB"), preprocessing["size"])
            for k in (0, 1)
        ]
    )
    outputs = session.run(None, {"data": batch})[0]
    assert outputs.shape == (2, 2)
    assert np.allclose(outputs.sum(axis=1), 1.0, atol=1e-5)
    # the job records the calibration and the unknown threshold on the iteration, as the model carries them
    calibration = IterationStore(account).get(project.id, iteration.id).calibration
    assert calibration is not None and calibration.unknown_threshold == float(metadata["unknown_threshold"])
    assert calibration.temperature == float(metadata["temperature"])


def test_image_reads_by_iteration_are_its_training_set(trained: dict, service_trainer) -> None:
    """The training job snapshots the set it trained on: image reads with iterationId answer that set, however
    the project changed since."""
    project, iteration = trained["project"], trained["iteration"]
    warm = trained["tags"]["warm"]
    trained_ids = {
        i.id for i in service_trainer.get_tagged_images(project.id, iteration_id=iteration.id, take=256)
    }
    assert (
        len(trained_ids)
        == 16
        == service_trainer.get_tagged_image_count(project.id, iteration_id=iteration.id)
    )
    assert (
        service_trainer.get_tagged_image_count(project.id, iteration_id=iteration.id, tag_ids=[warm.id]) == 8
    )
    assert service_trainer.get_untagged_image_count(project.id, iteration_id=iteration.id) == 0
    late = ImageFileCreateEntry(name="late.jpg", contents=pattern_image(0, 99), tag_ids=[warm.id])
    added = service_trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=[late]))
    late_id = added.images[0].image.id
    try:
        by_iteration = service_trainer.get_tagged_images(project.id, iteration_id=iteration.id, take=256)
        assert {i.id for i in by_iteration} == trained_ids
        assert late_id in {i.id for i in service_trainer.get_tagged_images(project.id, take=256)}
        oldest = service_trainer.get_images(
            project.id, iteration_id=iteration.id, order_by="Oldest", take=5, skip=3
        )
        newest = service_trainer.get_images(project.id, iteration_id=iteration.id, take=256)
        assert [i.id for i in oldest] == [i.id for i in reversed(newest)][3:8]
    finally:
        service_trainer.delete_images(project.id, image_ids=[late_id])
