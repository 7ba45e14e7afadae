"""ONNX export and its check. The backbone (with normalisation) is exported once, with the TorchScript-based
exporter (`dynamo=False`: about 2 s for efficientnet-lite2 here, against about 11 s for the dynamo exporter);
the same graph computes training features in ONNX Runtime (several times faster than eager torch on CPU), and
the trained head is appended to it as Gemm + Softmax/Sigmoid nodes. A detector is exported whole. Either model
gets the tensor names and metadata of `pipeline.contract.onnx_model`, and is then checked against the torch
model on real images."""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from pipeline.contract.onnx_model import (
    CLASSIFIER_OUTPUT,
    DETECTOR_OUTPUTS,
    FEATURES,
    INPUT,
    UNKNOWN_OUTPUT,
    MetadataKey,
    ModelLabel,
    encode_labels,
)
from pipeline.core.cores import usable_cores
from pipeline.core.memory import release_free_memory
from pipeline.core.vocabulary import ClassificationType, DomainType
from pipeline.vision.preprocessing import FULL_PREPROCESSING, describe
from training_job.backbones import get_spec
from training_job.classifier import Classifier, FeatureExtractor, feature_extractor, probabilities
from training_job.unknown import UnknownScore

if TYPE_CHECKING:  # detector imports torchvision, seconds of a classifier job's start that it never uses
    from training_job.detector import Detector

OPSET = 17
TOLERANCE = 1e-4
DETECTION_TOLERANCE = 1e-3  # boxes pass through exp and NMS: a little more float drift


class ExportVerificationError(RuntimeError):
    """The exported model does not compute what the torch model computes."""


def export_module(module: torch.nn.Module, size: int, outputs: Sequence[str]) -> onnx.ModelProto:
    """`module` as ONNX: input INPUT [N, 3, S, S] 0..255 RGB, the named outputs, batch dimension dynamic."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(
            module.eval(),
            (torch.zeros(1, 3, size, size),),
            buffer,
            input_names=[INPUT],
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *outputs)},
            opset_version=OPSET,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def export_features(extractor: FeatureExtractor, size: int) -> onnx.ModelProto:
    """The feature extractor as ONNX: input INPUT [N, 3, S, S] 0..255 RGB, output FEATURES [N, D]."""
    return export_module(extractor, size, [FEATURES])


@dataclass(frozen=True)
class PretrainedBackbone:
    """A backbone's pretrained feature extractor and its ONNX graph: where every classifier run starts."""

    extractor: FeatureExtractor
    features: onnx.ModelProto  # `export_features(extractor, ...)` at the backbone's image size


# Made ahead by a standby execution (`prepare_backbones`), each handed out once.
_prepared: dict[str, PretrainedBackbone] = {}


def prepare_backbones(names: Iterable[str]) -> None:
    """Load and export these backbones now for the next `pretrained_backbone` of each: about 0.8 s for
    efficientnet-lite2 on 2 cores (0.9 s of CPU) that a standby execution spends before its request comes rather
    than after. The exports' temporary buffers are handed back to the OS: lite0 and lite2 then hold about
    110 MiB, not 280."""
    for name in names:
        _prepared[name] = _load_and_export(name)
    release_free_memory()


def discard_prepared_backbones() -> None:
    """Drop what `prepare_backbones` made, for a run that will not use it (a detector's: raccoon's peaked 61 MiB
    lower, at 1,765 MiB)."""
    _prepared.clear()
    release_free_memory()


def pretrained_backbone(name: str) -> PretrainedBackbone:
    """The backbone ready to train on: the one made ahead, once (a run may change its extractor), else a new one."""
    prepared = _prepared.pop(name, None)
    return prepared if prepared is not None else _load_and_export(name)


def _load_and_export(name: str) -> PretrainedBackbone:
    size = get_spec(name).image_size  # first: it refuses a backbone Seer does not train on
    extractor = feature_extractor(name)
    return PretrainedBackbone(extractor, export_features(extractor, size))


def session(model: onnx.ModelProto | bytes, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def attach_head(
    features: onnx.ModelProto, weight: np.ndarray, bias: np.ndarray, multilabel: bool
) -> onnx.ModelProto:
    """A copy of the feature model with the linear head and the activation after it, output CLASSIFIER_OUTPUT."""
    model = onnx.ModelProto()
    model.CopyFrom(features)
    graph = model.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(weight.astype(np.float32), "head.weight"),
            numpy_helper.from_array(bias.astype(np.float32), "head.bias"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Gemm", [FEATURES, "head.weight", "head.bias"], ["logits"], transB=1),
            helper.make_node("Sigmoid", ["logits"], [CLASSIFIER_OUTPUT])
            if multilabel
            else helper.make_node("Softmax", ["logits"], [CLASSIFIER_OUTPUT], axis=-1),
        ]
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(CLASSIFIER_OUTPUT, TensorProto.FLOAT, ["batch", weight.shape[0]])
    )
    return model


def attach_unknown_score(model: onnx.ModelProto, unknown: UnknownScore) -> None:
    """Add UNKNOWN_OUTPUT, computed from FEATURES as `UnknownScore.scores` computes it: unit-length features,
    cosine similarity to every bank row, the k-th largest (TopK, then its minimum), 1 minus that."""
    graph = model.graph
    k = min(unknown.k, len(unknown.bank))
    graph.initializer.extend(
        [
            numpy_helper.from_array(unknown.bank.T.astype(np.float32), "unknown.bank"),
            numpy_helper.from_array(np.array([k], dtype=np.int64), "unknown.k"),
            # shape [1], not scalars: coremltools cannot broadcast a rank-0 constant in Max
            numpy_helper.from_array(np.array([1e-12], dtype=np.float32), "unknown.epsilon"),
            numpy_helper.from_array(np.array([1.0], dtype=np.float32), "unknown.one"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceL2", [FEATURES], ["unknown.norm"], axes=[1], keepdims=1),
            helper.make_node("Max", ["unknown.norm", "unknown.epsilon"], ["unknown.safe_norm"]),
            helper.make_node("Div", [FEATURES, "unknown.safe_norm"], ["unknown.unit"]),
            helper.make_node("MatMul", ["unknown.unit", "unknown.bank"], ["unknown.similarity"]),
            helper.make_node(
                "TopK",
                ["unknown.similarity", "unknown.k"],
                ["unknown.nearest", "unknown.nearest_index"],
                axis=1,
            ),
            helper.make_node("ReduceMin", ["unknown.nearest"], ["unknown.kth"], axes=[1], keepdims=0),
            helper.make_node("Sub", ["unknown.one", "unknown.kth"], [UNKNOWN_OUTPUT]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info(UNKNOWN_OUTPUT, TensorProto.FLOAT, ["batch"]))


def package_classifier(
    features: onnx.ModelProto,
    model: Classifier,
    labels: Sequence[ModelLabel],
    size: int,
    backbone: str,
    unknown: UnknownScore | None = None,
    temperature: float = 1.0,
) -> bytes:
    """The served model: `features` (the exported backbone of `model`) with `model`'s head attached (its
    calibration temperature already folded in), the unknown score as a second output when given, and the
    metadata serving and offline users need (labels in output order, preprocessing, classification type, the
    unknown threshold)."""
    head = model.head
    packaged = attach_head(
        features, head.weight.detach().numpy(), head.bias.detach().numpy(), model.multilabel
    )
    entries = {
        MetadataKey.LABELS: encode_labels(labels),
        MetadataKey.PREPROCESSING: json.dumps(describe(size)),
        MetadataKey.CLASSIFICATION_TYPE: ClassificationType.MULTILABEL
        if model.multilabel
        else ClassificationType.MULTICLASS,
        MetadataKey.BACKBONE: backbone,
        MetadataKey.TEMPERATURE: repr(temperature),
    }
    if unknown is not None:
        attach_unknown_score(packaged, unknown)
        entries[MetadataKey.UNKNOWN_THRESHOLD] = repr(unknown.threshold)
        entries[MetadataKey.OUTPUTS] = json.dumps([CLASSIFIER_OUTPUT, UNKNOWN_OUTPUT])
    return with_metadata(packaged, entries)


def package_detector(model: Detector, labels: Sequence[ModelLabel], size: int, backbone: str) -> bytes:
    """The served detector: backbone, head, decoding and NMS as one ONNX graph, with the metadata serving and
    offline users need."""
    exported = export_module(model, size, DETECTOR_OUTPUTS)
    entries = {
        MetadataKey.LABELS: encode_labels(labels),
        MetadataKey.PREPROCESSING: json.dumps(describe(size, FULL_PREPROCESSING)),
        MetadataKey.CLASSIFICATION_TYPE: json.dumps(None),
        MetadataKey.DOMAIN_TYPE: DomainType.OBJECT_DETECTION,
        MetadataKey.BACKBONE: backbone,
        MetadataKey.OUTPUTS: json.dumps(list(DETECTOR_OUTPUTS)),
        MetadataKey.NMS_IOU: json.dumps(model.nms_iou),
    }
    return with_metadata(exported, entries)


def with_metadata(model: onnx.ModelProto, entries: dict[str, str]) -> bytes:
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def verify(
    model: bytes, classifier: Classifier, inputs: np.ndarray, unknown: UnknownScore | None = None
) -> float:
    """Max abs difference between ONNX Runtime and torch on `inputs` (probabilities, and the unknown score
    against `unknown.scores` of torch's features); raises past TOLERANCE."""
    names = [CLASSIFIER_OUTPUT] + ([UNKNOWN_OUTPUT] if unknown is not None else [])
    onnx_out = session(model).run(names, {INPUT: inputs})
    # Every core, as the run set them: four images through the backbone took 0.25 s on one of 2 cores, 0.12 s on both
    with torch.inference_mode():
        features = classifier.eval().features(torch.from_numpy(inputs))
        torch_out = [probabilities(classifier.head(features), classifier.multilabel).numpy()]
    if unknown is not None:
        torch_out.append(unknown.scores(features.numpy()))
    difference = max(float(np.abs(a - b).max()) for a, b in zip(onnx_out, torch_out, strict=True))
    if not difference <= TOLERANCE:
        raise ExportVerificationError(
            f"ONNX and torch outputs differ by {difference:.2e} (> {TOLERANCE:.0e})"
        )
    return difference


def verify_detections(model: bytes, detector: Detector, inputs: np.ndarray) -> float:
    """Max difference between ONNX Runtime's and torch's detections on `inputs`: every box torch finds (score
    above 0.01) must come out of ONNX Runtime with the same tag, score and box; raises past DETECTION_TOLERANCE.
    Matched rather than compared row by row, so near-ties that swap places are no false alarm."""
    onnx_boxes, onnx_scores, onnx_tags = session(model).run(list(DETECTOR_OUTPUTS), {INPUT: inputs})
    with torch.inference_mode():
        boxes, scores, tags = (t.numpy() for t in detector.eval()(torch.from_numpy(inputs)))
    difference = 0.0
    for image in range(len(inputs)):
        for box, score, tag in zip(boxes[image], scores[image], tags[image], strict=True):
            if score <= 0.01:
                continue
            candidates = np.flatnonzero(onnx_tags[image] == tag)
            gaps = [
                max(
                    abs(float(onnx_scores[image, c] - score)), float(np.abs(onnx_boxes[image, c] - box).max())
                )
                for c in candidates
            ]
            difference = max(difference, min(gaps, default=math.inf))
    if not difference <= DETECTION_TOLERANCE:
        raise ExportVerificationError(
            f"ONNX and torch detections differ by {difference:.2e} (> {DETECTION_TOLERANCE:.0e})"
        )
    return difference
