"""The model cache stays bounded (issue 10, item 10: memory grew with every published model): evicted models give
back their threads and memory, cached models share one arena for their activations, and a request that still
holds an evicted model gets its answer."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.contract.onnx_model import INPUT, ModelLabel, encode_labels
from pipeline.vision.inference import ModelCache

SIDE = 512
CHANNELS = 64  # the convolution's output is 64 x 512 x 512 float32 = 64 MiB of activations per image
ACTIVATION_MIB = CHANNELS * SIDE * SIDE * 4 / 2**20


def wide_model(seed: int) -> bytes:
    """A classifier with tiny weights and big activations: what an arena keeps is easy to see in RSS."""
    weights = np.random.default_rng(seed).standard_normal((CHANNELS, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", [INPUT, "w"], ["features"], pads=[1, 1, 1, 1]),
            helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["model_outputs"]),
        ],
        "wide",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("model_outputs", TensorProto.FLOAT, ["N", CHANNELS])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    labels = [ModelLabel(f"tag-{n}", f"tag {n}") for n in range(CHANNELS)]
    helper.set_model_props(model, {"labels": encode_labels(labels)})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def worker_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("onnx-worker"))


IMAGE = np.zeros((3, SIDE, SIDE), np.float32)


def test_evicted_models_release_their_threads_and_sessions():
    cache = ModelCache(capacity=2, workers=2)
    before = worker_threads()
    loaded = []
    for n in range(5):
        model = cache.get(f"model-{n}", lambda n=n: wide_model(n))
        model.run(IMAGE)
        loaded.append(weakref.ref(model))
        del model
    gc.collect()
    assert len(cache) == 2
    assert worker_threads() - before == 2 * 2
    assert [ref() is not None for ref in loaded] == [False, False, False, True, True]


def test_cached_models_share_one_arena():
    """Four cached models that each ran once hold about one model's activations, not four."""
    cache = ModelCache(capacity=4, workers=1)
    first = cache.get("warm-up", lambda: wide_model(99))  # the process-wide arena and ORT itself
    first.run(IMAGE)
    del first
    start = rss_mib()
    for n in range(4):
        cache.get(f"model-{n}", lambda n=n: wide_model(n)).run(IMAGE)
    grown = rss_mib() - start
    assert grown < 2 * ACTIVATION_MIB, f"RSS grew {grown:.0f} MiB for 4 models of {ACTIVATION_MIB:.0f} MiB"


def test_a_request_holding_an_evicted_model_still_gets_its_answer():
    cache = ModelCache(capacity=1, workers=1)
    held = cache.get("held", lambda: wide_model(1))
    cache.get("newer", lambda: wide_model(2)).run(IMAGE)  # evicts `held`
    answers: list[list[np.ndarray]] = []
    request = threading.Thread(target=lambda: answers.append(held.run(IMAGE)), daemon=True)
    request.start()
    request.join(timeout=30)
    assert answers and answers[0][0].shape == (CHANNELS,)
