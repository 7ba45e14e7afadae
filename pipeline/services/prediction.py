"""Predicting with a trained iteration: decode and validate the image, run the iteration's ONNX model through the
shared model cache with the same preprocessing as training, and (unless `nostore`) keep the image and result.
Serving never imports torch."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from PIL import Image

from pipeline.contract.exports import onnx_model_of_export
from pipeline.contract.onnx_model import (
    CLASSIFIER_OUTPUT,
    DETECTED_BOXES,
    DETECTED_CLASSES,
    DETECTED_SCORES,
    FEATURES,
    UNKNOWN_OUTPUT,
    MetadataKey,
)
from pipeline.core.boxes import Box
from pipeline.core.domains import domain_of
from pipeline.core.errors import bad_request, not_trained
from pipeline.core.limits import URL_SAFE_NAME
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import DomainType, ImageCreateStatus, TagType, new_id
from pipeline.services.publishing import PublishedIterations
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore
from pipeline.store.iterations import IterationStore
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import (
    IterationRecord,
    PredictedTag,
    PredictionRecord,
    UnknownVerdict,
    utcnow,
)
from pipeline.vision.embedding import exposing_features
from pipeline.vision.fetch import FetchError, FetchTooLarge, fetch_url
from pipeline.vision.imaging import DecodedImage, ImageRejected, decode_image, stored_copies
from pipeline.vision.inference import LoadedModel, ModelCache
from pipeline.vision.preprocessing import preprocess, preprocess_full

_REJECTION_CODES = {
    ImageCreateStatus.ERROR_IMAGE_SIZE: "BadRequestImageSizeBytes",
    ImageCreateStatus.ERROR_IMAGE_DIMENSIONS: "BadRequestImageDimensions",
    ImageCreateStatus.ERROR_IMAGE_FORMAT: "BadRequestImageFormat",
}


@dataclass(frozen=True)
class PredictionRequest:
    """What to predict with and what to do with the result."""

    iteration: IterationRecord
    kind: DomainType  # the route's kind, checked against the iteration
    store: bool = True
    application: str | None = None
    unknown_detection: bool = False  # the project's setting: say whether the image is none of the tags


@dataclass(frozen=True)
class PredictionResult:
    """One image's predictions, most probable first."""

    project_id: str
    iteration_id: str
    predictions: list[PredictedTag]
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=utcnow)
    unknown: UnknownVerdict | None = None


def predicted(
    tag_id: str,
    tag_name: str,
    probability: float,
    box: Box | None = None,
    tag_type: TagType = TagType.REGULAR,
) -> PredictedTag:
    """A tag's prediction, with its box for detectors."""
    geometry = (
        {} if box is None else {"left": box.left, "top": box.top, "width": box.width, "height": box.height}
    )
    return PredictedTag(
        tag_id=tag_id, tag_name=tag_name, probability=probability, tag_type=tag_type, **geometry
    )


def by_probability(predictions: list[PredictedTag]) -> list[PredictedTag]:
    return sorted(predictions, key=lambda p: p.probability, reverse=True)


def _decode(data: bytes, settings: Settings) -> DecodedImage:
    try:
        return decode_image(data, settings, max_bytes=settings.max_prediction_image_bytes)
    except ImageRejected as rejected:
        code = _REJECTION_CODES.get(rejected.status, "BadRequestImageStream")
        raise bad_request(code, rejected.message) from rejected


def unknown_verdict(model: LoadedModel, outputs: dict[str, np.ndarray]) -> UnknownVerdict | None:
    """The model's unknown score against its threshold; None for models without them (detectors, classifiers
    trained before they were added)."""
    threshold = model.metadata.get(MetadataKey.UNKNOWN_THRESHOLD)
    if UNKNOWN_OUTPUT not in outputs or threshold is None:
        return None
    score = float(outputs[UNKNOWN_OUTPUT])
    return UnknownVerdict(is_unknown=score > float(threshold), score=score, threshold=float(threshold))


def _classify(model: LoadedModel, image: Image.Image) -> Outputs:
    return dict(zip(model.output_names, model.run(preprocess(image, model.input_size)), strict=True))


def _classifications(model: LoadedModel, outputs: Outputs) -> list[PredictedTag]:
    probabilities = outputs[CLASSIFIER_OUTPUT]
    return by_probability(
        [
            predicted(label.tag_id, label.name, float(p), tag_type=label.type)
            for label, p in zip(model.labels, probabilities, strict=True)
        ]
    )


def _detect(model: LoadedModel, image: Image.Image) -> Outputs:
    return dict(zip(model.output_names, model.run(preprocess_full(image, model.input_size)), strict=True))


def _detections(model: LoadedModel, outputs: Outputs) -> list[PredictedTag]:
    """The exported detector already decodes and suppresses: its boxes come normalised, by falling score, at
    most 200, padded with score 0."""
    predictions = []
    for (left, top, width, height), score, index in zip(
        outputs[DETECTED_BOXES].tolist(),
        outputs[DETECTED_SCORES].tolist(),
        outputs[DETECTED_CLASSES].tolist(),
        strict=True,
    ):
        if score > 0:
            label = model.labels[int(index)]
            box = Box(label.tag_id, left, top, width, height, score)
            predictions.append(predicted(label.tag_id, label.name, float(score), box, label.type))
    return by_probability(predictions)


Outputs = dict[str, np.ndarray]  # one image's row of each of the model's outputs, by output name
_PREDICT: dict[
    DomainType,
    tuple[
        Callable[[LoadedModel, Image.Image], Outputs], Callable[[LoadedModel, Outputs], list[PredictedTag]]
    ],
] = {
    DomainType.CLASSIFICATION: (_classify, _classifications),
    DomainType.OBJECT_DETECTION: (_detect, _detections),
}


def model_predictions(
    model: LoadedModel, kind: DomainType, image: Image.Image
) -> tuple[list[PredictedTag], UnknownVerdict | None]:
    """A loaded model's predictions for a decoded image, most probable first, and its unknown verdict."""
    outputs, predictions = _PREDICT[kind]
    row = outputs(model, image)
    return predictions(model, row), unknown_verdict(model, row)


class Predictor:
    """One per app: owns the bounded cache of loaded models, keyed by model blob (written once per iteration)."""

    def __init__(self, account: StorageAccount, settings: Settings, models: ModelCache) -> None:
        self.account = account
        self.settings = settings
        self.models = models
        self.published = PublishedIterations(account, settings.published_cache_seconds)

    def model(self, iteration: IterationRecord) -> LoadedModel:
        return self.models.get(iteration.model_blob or "", lambda: self._model_bytes(iteration))

    def serving_model(self, iteration: IterationRecord) -> LoadedModel:
        """The model a prediction URL serves: the iteration's own, or its INT8 export in Seer's INT8 serving
        mode (pipeline.services.publishing.int8_serving)."""
        serving_blob = iteration.serving_blob
        if serving_blob is None:
            return self.model(iteration)
        return self.models.get(
            f"exports/{serving_blob}",
            lambda: onnx_model_of_export(b"".join(ExportStore(self.account).stream(serving_blob))),
        )

    def fetch_image(self, url: str) -> bytes:
        """The bytes behind a prediction or quick-test URL (an image URI of this Seer's own storage too), or the
        Custom Vision error."""
        try:
            return fetch_url(
                url,
                self.settings,
                max_bytes=self.settings.max_prediction_image_bytes,
                readable_endpoints=self.account.link_endpoints,
            )
        except FetchTooLarge as error:
            raise bad_request("BadRequestImageSizeBytes", str(error)) from error
        except FetchError as error:
            raise bad_request("BadRequestImageUrl", str(error)) from error

    def _model_bytes(self, iteration: IterationRecord) -> bytes:
        """The iteration's ONNX model (NotTrained when it has none: the cache keeps nothing for a failed load)."""
        if not iteration.model_blob:
            raise not_trained(f"Iteration {iteration.name} is not trained.")
        return IterationStore(self.account).read_artefact(iteration.model_blob)

    def run(self, iteration: IterationRecord, image: Image.Image) -> list[PredictedTag]:
        """The iteration's predictions for a decoded image, most probable first (boxes for detectors)."""
        return self.run_with_verdict(iteration, image)[0]

    def run_with_verdict(
        self, iteration: IterationRecord, image: Image.Image
    ) -> tuple[list[PredictedTag], UnknownVerdict | None]:
        """`run`'s predictions, and whether the image is none of the tags where the model says."""
        return model_predictions(self.model(iteration), domain_of(iteration.domain_id).type, image)

    def run_with_features(
        self, iteration: IterationRecord, image: Image.Image
    ) -> tuple[list[PredictedTag], np.ndarray | None]:
        """`run`'s predictions and, for a classifier, its pooled features (labelling help ranks untagged images
        by them), from one pass of a copy of the model that exposes them (pipeline.vision.embedding)."""
        if domain_of(iteration.domain_id).type != DomainType.CLASSIFICATION:
            return self.run(iteration, image), None
        model = self.models.get(
            f"{iteration.model_blob}#{FEATURES}", lambda: exposing_features(self._model_bytes(iteration))
        )
        outputs = _classify(model, image)
        return _classifications(model, outputs), outputs.get(FEATURES)

    def predict(self, request: PredictionRequest, data: bytes) -> PredictionResult:
        iteration = request.iteration
        domain_type = domain_of(iteration.domain_id).type
        if domain_type != request.kind:
            raise bad_request(
                "BadRequestUnsupportedDomain",
                f"Iteration {iteration.name} is a {domain_type} model; use the "
                f"{'classify' if domain_type == DomainType.CLASSIFICATION else 'detect'} endpoints.",
            )
        if request.application is not None and not URL_SAFE_NAME.match(request.application):
            raise bad_request(
                "BadRequestPredictionInvalidApplicationName",
                "application must be 1 to 64 letters, digits, '.', '-' or '_'.",
            )
        decoded = _decode(data, self.settings)
        predictions, verdict = model_predictions(self.serving_model(iteration), domain_type, decoded.image)
        result = PredictionResult(
            iteration.project_id,
            iteration.id,
            predictions,
            unknown=verdict if request.unknown_detection else None,
        )
        if request.store:
            self._store(request, data, decoded, result)
        return result

    def _store(
        self, request: PredictionRequest, data: bytes, decoded: DecodedImage, result: PredictionResult
    ) -> None:
        store = PredictionStore(self.account)
        prefix = f"{result.project_id}/{result.id}"
        resized, thumbnail = stored_copies(decoded.image, self.settings)
        blobs = {
            f"{prefix}/original.{decoded.extension}": (data, decoded.content_type),
            f"{prefix}/resized.jpg": (resized, "image/jpeg"),
            f"{prefix}/thumbnail.jpg": (thumbnail, "image/jpeg"),
        }
        with ThreadPoolExecutor(max_workers=len(blobs)) as pool:  # blobs in parallel; the row only after all
            list(pool.map(lambda item: store.put_blob(item[0], *item[1]), blobs.items()))
        original, resized_blob, thumbnail_blob = blobs
        store.insert(
            PredictionRecord(
                id=result.id,
                project_id=result.project_id,
                iteration_id=result.iteration_id,
                domain_id=request.iteration.domain_id,
                application=request.application,
                predictions=result.predictions,
                original_blob=original,
                resized_blob=resized_blob,
                thumbnail_blob=thumbnail_blob,
                width=decoded.width,
                height=decoded.height,
                created=result.created,
                unknown=result.unknown,
            )
        )
