"""Running exported models with ONNX Runtime: a bounded cache of loaded models keyed by the model blob, each run
on the calling thread by one of two sessions of the same model.

A lone request runs on a session with every core (intra-op threads = cores, spin-waiting off): the fastest single
answer. A request that arrives while another runs, of this model or any other, takes a single-threaded session
instead, shared by all such requests (ORT sessions are thread-safe; a single-threaded run stays on its caller's
thread), so concurrent requests each keep one core busy rather than splitting every operator across cores that are
all busy anyway. "Lone" is counted over the process, not per model: two models' lone requests at once would each
split their operators over cores the other keeps busy (a throwaway run on 2 cores, two Lite0 models, one thread each
decoding and predicting in process, 3 rounds of 6 s: counted per model 114 to 123 images/s at 16.2 to 17.4 ms of
CPU an image, counted over the process 124 at 16.0). Against the earlier worker threads with opportunistic
batching, measured on the 2-core machine (issue 16, item 5: the service behind bench/predict.py's setup, /proc CPU
times, 4 clients for 10 s): Lite2 42.9 ms of service CPU per request instead of 46.3 (42.3 requests/s instead of
38.5); Lite0 the same within the run-to-run noise. The single-threaded session is made the first time it is
needed: a second copy of the model's weights, only for models that get concurrent requests.

Memory (issue 10, item 10): every session allocates from one process-wide ORT arena instead of its own, so the
cache holds each model's weights plus one arena sized by the largest concurrent work; an evicted model's sessions
are freed as soon as no request holds them and the freed heap is handed back to the OS (`release_free_memory`),
so memory stops growing once the cache is full (bench/soak.py, whose predictions come one at a time, so it
measures the every-core sessions only)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import onnxruntime as ort

from pipeline.contract.onnx_model import ModelLabel, decode_labels
from pipeline.core.cores import usable_cores
from pipeline.core.memory import release_free_memory

log = logging.getLogger(__name__)

_arena_lock = threading.Lock()
_arena_registered = False


def _use_shared_arena(options: ort.SessionOptions) -> None:
    """Make a session allocate from the process's one CPU arena, registering it the first time (ORT allows one
    registration per process). The arena grows only by what is asked for (extend strategy 1, kSameAsRequested)."""
    global _arena_registered
    with _arena_lock:
        if not _arena_registered:
            memory = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 1, -1, -1))
            _arena_registered = True
    options.add_session_config_entry("session.use_env_allocators", "1")


class RunsInFlight:
    """How many model runs the process has in flight, whatever their models (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0

    @contextmanager
    def entered(self) -> Iterator[bool]:
        """Count one run while the block runs; yields whether no other run was in flight when it began."""
        with self._lock:
            alone = self._running == 0
            self._running += 1
        try:
            yield alone
        finally:
            with self._lock:
                self._running -= 1


RUNS_IN_FLIGHT = RunsInFlight()


class LoadedModel:
    """One ONNX model, its metadata, and the two sessions that run it (see the module docstring)."""

    def __init__(self, model_bytes: bytes) -> None:
        self._bytes = model_bytes
        self.session = new_session(model_bytes, usable_cores())
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.metadata = metadata
        self.labels: list[ModelLabel] = decode_labels(metadata)
        self.input_name = self.session.get_inputs()[0].name
        self.input_size = int(self.session.get_inputs()[0].shape[-1])
        self.output_names = [output.name for output in self.session.get_outputs()]
        self._creating = threading.Lock()  # the single-threaded session is made once, beside running requests
        self._single_threaded: ort.InferenceSession | None = None

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Outputs for one preprocessed image ([3, S, S] float32): each output's row for this image."""
        with RUNS_IN_FLIGHT.entered() as alone:
            session = self.session if alone else self._shared_single_threaded()
            return [output[0] for output in session.run(None, {self.input_name: tensor[np.newaxis]})]

    def _shared_single_threaded(self) -> ort.InferenceSession:
        with self._creating:
            if self._single_threaded is None:
                self._single_threaded = new_session(self._bytes, 1)
            return self._single_threaded


def new_session(model_bytes: bytes, threads: int) -> ort.InferenceSession:
    """A session as the service runs models: `threads` intra-op threads, spin-waiting off, the shared arena."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    _use_shared_arena(options)
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _retire(models: list[LoadedModel]) -> None:
    """Drop the evicted models, then hand the freed heap (their sessions, unless a request still holds one, and the
    loading's temporary buffers) back to the OS."""
    models.clear()
    release_free_memory()


class ModelCache:
    """At most `capacity` loaded models, least recently used evicted. Keys are model blob names, which never
    change content (an iteration's model is written once), so a new publish is simply a new key."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str, load_bytes: Callable[[], bytes]) -> LoadedModel:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one download per model even when many requests arrive together
            with self._lock:
                if key in self._models:
                    return self._models[key]
            try:
                model = LoadedModel(load_bytes())
            except BaseException:
                with self._lock:  # a failed load leaves nothing behind; the next request tries again
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._models[key] = model
                self._loading.pop(key, None)
                evicted = [
                    self._models.popitem(last=False)[1] for _ in range(len(self._models) - self.capacity)
                ]
            _retire(evicted)  # outside the lock: lookups of other models go on while these drain
            log.info("loaded model %s (%d cached)", key, len(self._models))
            return model

    def __len__(self) -> int:
        return len(self._models)
