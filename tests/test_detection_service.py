"""Object detection end to end, driven by the official SDK the way Custom Vision's object detection quickstart
does it: a compact detection project, images uploaded with regions, training (refused below 15 images per tag),
polling, performance at an overlap threshold, publishing, detect_image and detect_image_with_no_store. The whole
service runs: function_app.py on the local host, real Azurite, the training job as its own process. The detector is
conftest's session-wide `trained_detector` (trained once for the run; tests/test_conformance_trained.py uses it
too)."""

from __future__ import annotations

import io
import uuid

import pytest
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    PredictionQueryToken,
)

from pipeline.core.boxes import Box
from tests.conftest import DETECTOR_PUBLISHED as PUBLISHED
from tests.images import detection_scene, jpeg


@pytest.fixture()
def detector(trained_detector: dict) -> dict:
    return trained_detector


def truth(seed: int, tags: list) -> list[Box]:
    image, boxes = detection_scene(seed)
    width, height = image.size
    return [Box(tags[tag].id, x / width, y / height, w / width, h / height) for tag, x, y, w, h in boxes]


def found(predictions, expected: list[Box]) -> list[float]:
    """For each true box, the best IoU among the confident predicted boxes of its tag."""
    return [
        max(
            (
                Box.iou(
                    box,
                    Box(
                        p.tag_id,
                        p.bounding_box.left,
                        p.bounding_box.top,
                        p.bounding_box.width,
                        p.bounding_box.height,
                    ),
                )
                for p in predictions
                if p.tag_id == box.tag_id and p.probability >= 0.5
            ),
            default=0.0,
        )
        for box in expected
    ]


def test_performance_at_an_overlap_threshold(detector: dict, service_trainer) -> None:
    project, iteration = detector["project"], detector["iteration"]
    default = service_trainer.get_iteration_performance(
        project.id, iteration.id, threshold=0.5, overlap_threshold=0.5
    )
    assert {t.name for t in default.per_tag_performance} == {"red block", "blue block"}
    assert default.average_precision > 0.6 and default.recall > 0.5, default.as_dict()
    strict = service_trainer.get_iteration_performance(
        project.id, iteration.id, threshold=0.5, overlap_threshold=0.97
    )
    assert strict.average_precision < default.average_precision  # almost no box overlaps its truth that well
    images = service_trainer.get_image_performances(project.id, iteration.id, take=50)
    assert len(images) == 24
    for image in images:
        assert image.regions and all(p.bounding_box is not None for p in image.predictions)
        probabilities = [p.probability for p in image.predictions]
        assert probabilities == sorted(probabilities, reverse=True) and len(probabilities) <= 200


def test_detect_image_finds_the_blocks(detector: dict, service_predictor, service_trainer) -> None:
    project, tags = detector["project"], detector["tags"]
    for seed in (1000, 1002, 1003):
        image, _ = detection_scene(seed)
        result = service_predictor.detect_image(project.id, PUBLISHED, io.BytesIO(jpeg(image)))
        assert result.iteration == detector["iteration"].id
        assert 0 < len(result.predictions) <= 200
        probabilities = [p.probability for p in result.predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        for p in result.predictions:
            box = p.bounding_box
            assert 0 <= box.left <= box.left + box.width <= 1 + 1e-6
            assert 0 <= box.top <= box.top + box.height <= 1 + 1e-6
        assert min(found(result.predictions, truth(seed, tags))) > 0.5

    kept = result
    unstored = service_predictor.detect_image_with_no_store(project.id, PUBLISHED, io.BytesIO(jpeg(image)))
    assert [p.probability for p in unstored.predictions] == pytest.approx(probabilities)
    quick = service_trainer.quick_test_image(project.id, io.BytesIO(jpeg(image)), store=False)
    assert [p.bounding_box.left for p in quick.predictions] == pytest.approx(
        [p.bounding_box.left for p in result.predictions]
    )
    page = service_trainer.query_predictions(project.id, PredictionQueryToken(max_count=50))
    ids = [p.id for p in page.results]
    assert kept.id in ids and unstored.id not in ids
    stored = next(p for p in page.results if p.id == kept.id)
    assert stored.predictions[0].bounding_box is not None
    assert stored.predictions[0].bounding_box.left == pytest.approx(result.predictions[0].bounding_box.left)


def test_classify_endpoints_refuse_a_detector(detector: dict, service_predictor) -> None:
    from azure.cognitiveservices.vision.customvision.prediction.models import (
        CustomVisionErrorException as Error,
    )

    image, _ = detection_scene(7)
    with pytest.raises(Error) as refused:
        service_predictor.classify_image(detector["project"].id, PUBLISHED, io.BytesIO(jpeg(image)))
    assert refused.value.response.status_code == 400


def test_region_proposals_and_suggestions(detector: dict, service_trainer) -> None:
    project, iteration, tags = detector["project"], detector["iteration"], detector["tags"]
    images = service_trainer.get_tagged_images(project.id, take=3)
    proposal = service_trainer.get_image_region_proposals(project.id, images[0].id)
    assert proposal.project_id == project.id and proposal.image_id == images[0].id
    confidences = [p.confidence for p in proposal.proposals]
    assert confidences and confidences == sorted(confidences, reverse=True)
    assert all(0 <= p.bounding_box.left <= 1 for p in proposal.proposals)
    places = [Box("", b.left, b.top, b.width, b.height) for b in (p.bounding_box for p in proposal.proposals)]
    assert all(a.iou(b) < 0.5 for i, a in enumerate(places) for b in places[i + 1 :])  # one per object

    suggestions = service_trainer.suggest_tags_and_regions(project.id, iteration.id, [i.id for i in images])
    assert [s.id for s in suggestions] == [i.id for i in images]
    for suggestion, image in zip(suggestions, images, strict=True):
        assert suggestion.iteration == iteration.id
        assert 0.0 <= suggestion.prediction_uncertainty <= 1.0
        truth = [
            Box(r.tag_id, r.left, r.top, r.width, r.height)
            for r in image.regions
            if r.tag_id in {t.id for t in tags}
        ]
        assert min(found(suggestion.predictions, truth)) > 0.5  # it was trained on these very boxes


def test_region_proposals_need_a_detection_project(service_trainer) -> None:
    project = service_trainer.create_project(f"classifier-{uuid.uuid4()}")
    with pytest.raises(CustomVisionErrorException) as refused:
        service_trainer.get_image_region_proposals(project.id, str(uuid.uuid4()))
    assert refused.value.error.code == "BadRequestUnsupportedDomain"
