"""A completed, published iteration written straight to storage, for tests that need one without training."""

from __future__ import annotations

from onnx import TensorProto, helper

from pipeline.contract.onnx_model import (
    CLASSIFIER_OUTPUT,
    FEATURES,
    INPUT,
    MetadataKey,
    ModelLabel,
    encode_labels,
)
from pipeline.core.vocabulary import IterationStatus, new_id
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore, artefact_name
from pipeline.store.records import IterationRecord


def tiny_classifier(labels: list[ModelLabel], size: int = 32, scale: float = 1.0) -> bytes:
    """An ONNX classifier in the shape Seer exports (features: the mean colour -> two scores -> softmax) for two
    labels: the first tag's score minus the second's is 2 * scale * (red - blue)."""
    weights = helper.make_tensor(
        "w", TensorProto.FLOAT, [3, 2], [scale * w for w in (1, -1, 0.5, 0.5, -1, 1)]
    )
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", [INPUT], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], [FEATURES]),
            helper.make_node("MatMul", [FEATURES, "w"], ["scores"]),
            helper.make_node("Softmax", ["scores"], [CLASSIFIER_OUTPUT], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info(CLASSIFIER_OUTPUT, TensorProto.FLOAT, ["N", 2])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {MetadataKey.LABELS: encode_labels(labels)})
    return model.SerializeToString()


def published_iteration(
    account: StorageAccount, project: dict, publish_name: str, model: bytes
) -> IterationRecord:
    """A completed iteration of `project` (its wire form) published as `publish_name`, `model` as its model;
    the model blob is written before the row, as the training job does."""
    pid, iteration_id = project["id"], new_id()
    iterations = IterationStore(account)
    model_blob = artefact_name(pid, iteration_id, "model.onnx")
    iterations.put_artefact(model_blob, model)
    return iterations.create(
        IterationRecord(
            id=iteration_id,
            project_id=pid,
            name="Iteration 1",
            status=IterationStatus.COMPLETED,
            domain_id=project["settings"]["domainId"],
            training_set_fingerprint="-",
            publish_name=publish_name,
            original_publish_resource_id="seer",
            model_blob=model_blob,
        )
    )
