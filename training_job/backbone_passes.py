"""Frozen-backbone passes over batches of preprocessed views, for the caches training fits on: on the CPU the
backbone exported to ONNX, in a single-threaded ONNX Runtime session per worker (several times faster than eager
torch there); on a GPU the torch module itself, in float32 (the cached activations are what the exported model
computes, within the export check's tolerance)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import onnx
import torch
from torch import nn

from pipeline.contract.onnx_model import INPUT
from training_job.device import TrainingDevice
from training_job.onnx_export import session

Passes = Callable[[np.ndarray], list[np.ndarray]]


def backbone_passes(
    module: nn.Module,
    exported: Callable[[], onnx.ModelProto],
    outputs: Sequence[str],
    device: TrainingDevice,
) -> Passes:
    """A function from preprocessed views [n, 3, S, S] to `module`'s outputs (named `outputs` in `exported()`,
    which is only called on the CPU), safe to call from several threads at once."""
    return torch_passes(module, device) if device.is_cuda else onnx_passes(exported(), outputs)


def onnx_passes(exported: onnx.ModelProto, outputs: Sequence[str]) -> Passes:
    runner = session(exported, threads=1)
    return lambda pixels: runner.run(list(outputs), {INPUT: pixels})


def torch_passes(module: nn.Module, device: TrainingDevice) -> Passes:
    on_device = copy.deepcopy(module).to(device.device).eval()

    def run(pixels: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            result = on_device(device.tensor(pixels))
        return [tensor.cpu().numpy() for tensor in (result if isinstance(result, tuple) else (result,))]

    return run
