"""The model cache stays bounded (issue 10, item 10: memory grew with every published model): evicted models give
back their memory, cached models share one arena for their activations, and a request that still holds an evicted
model gets its answer. A loaded model runs a lone request on its every-core session and concurrent ones on one
shared single-threaded session (issue 16, item 5), with the same answers; a request is alone only when no other
model runs either."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.contract.onnx_model import INPUT, ModelLabel, encode_labels
from pipeline.vision.inference import RUNS_IN_FLIGHT, ModelCache

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


IMAGE = np.zeros((3, SIDE, SIDE), np.float32)


def test_evicted_models_release_their_sessions():
    cache = ModelCache(capacity=2)
    loaded = []
    for n in range(5):
        model = cache.get(f"model-{n}", lambda n=n: wide_model(n))
        model.run(IMAGE)
        loaded.append(weakref.ref(model))
        del model
    gc.collect()
    assert len(cache) == 2
    assert [ref() is not None for ref in loaded] == [False, False, False, True, True]


def test_cached_models_share_one_arena():
    """Four cached models that each ran once hold about one model's activations, not four."""
    cache = ModelCache(capacity=4)
    first = cache.get("warm-up", lambda: wide_model(99))  # the process-wide arena and ORT itself
    first.run(IMAGE)
    del first
    start = rss_mib()
    for n in range(4):
        cache.get(f"model-{n}", lambda n=n: wide_model(n)).run(IMAGE)
    grown = rss_mib() - start
    assert grown < 2 * ACTIVATION_MIB, f"RSS grew {grown:.0f} MiB for 4 models of {ACTIVATION_MIB:.0f} MiB"


def test_a_request_holding_an_evicted_model_still_gets_its_answer():
    cache = ModelCache(capacity=1)
    held = cache.get("held", lambda: wide_model(1))
    cache.get("newer", lambda: wide_model(2)).run(IMAGE)  # evicts `held`
    answers: list[list[np.ndarray]] = []
    request = threading.Thread(target=lambda: answers.append(held.run(IMAGE)), daemon=True)
    request.start()
    request.join(timeout=30)
    assert answers and answers[0][0].shape == (CHANNELS,)


def test_concurrent_requests_share_a_single_threaded_session_with_the_same_answers():
    """A request that arrives while another runs takes the single-threaded session (made once), and every
    answer is the model's answer for its own image."""
    model = ModelCache(capacity=1).get("model", lambda: wide_model(7))
    images = [np.full((3, SIDE, SIDE), value, np.float32) for value in range(8)]
    alone = [model.run(image)[0] for image in images]
    assert model._single_threaded is None  # one request at a time: the every-core session only
    together: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(images))

    def request(index: int) -> None:
        start.wait()
        together[index] = model.run(images[index])[0]

    threads = [threading.Thread(target=request, args=(n,)) for n in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert model._single_threaded is not None
    assert sorted(together) == list(range(len(images)))
    for index, expected in enumerate(alone):
        np.testing.assert_allclose(together[index], expected, rtol=1e-5, atol=1e-5)


def test_a_run_beside_another_models_run_takes_the_single_threaded_session():
    """Whether a request is alone is counted over the process: while another model runs, this one does not take
    its every-core session."""
    model = ModelCache(capacity=1).get("model", lambda: wide_model(8))
    with RUNS_IN_FLIGHT.entered() as other_alone:  # another model's run, in flight
        assert other_alone
        beside = model.run(IMAGE)[0]
    assert model._single_threaded is not None
    np.testing.assert_allclose(beside, model.run(IMAGE)[0], rtol=1e-5, atol=1e-5)
