"""A classifier's pooled backbone features beside its probabilities, for labelling help (which untagged images to
label first, pipeline.vision.active_learning). The served model computes them on the way to its probabilities;
this exposes that inner tensor as an extra output of a second copy of the model, so the served model and its
exports keep exactly the outputs they promise."""

from __future__ import annotations

import onnx

from pipeline.contract.onnx_model import FEATURES


def exposing_features(model_bytes: bytes) -> bytes:
    """The model with FEATURES as an extra output; unchanged when its graph has no such tensor (a detector) or
    already outputs it."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    produced = {name for node in graph.node for name in node.output}
    if FEATURES not in produced or any(output.name == FEATURES for output in graph.output):
        return model_bytes
    graph.output.append(onnx.helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString()
