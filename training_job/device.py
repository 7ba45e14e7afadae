"""Where training runs: a CUDA GPU when torch sees one, else the CPU (`SEER_TRAINING_DEVICE`: auto, cpu, cuda).

Only the heavy loops move: batched backbone passes and the fine-tuning, block-tuning and detection-head steps.
Steps through backbone blocks run in mixed precision (float16 with a gradient scaler); detection heads train in
float32 on either device: their small convolutions are bound by kernel launches, and on an H200 autocast's casts
and the scaler's per-step overflow check made the same head steps 1.5x slower (9.3 s against 6.2 s on raccoon,
the same out-of-fold mAP). Every model a run keeps comes back to the CPU in float32 before it is exported, so the
exported model and its check against torch are the same whichever device trained it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.core.settings import TrainingDeviceChoice

CPU_NAME = "cpu"
GPU_VIEWS_PER_PASS = 64  # enough to keep a T4 busy with EfficientNet-Lite at 260 px, a few GB at most


class DeviceUnavailableError(RuntimeError):
    """The settings ask for a device this machine does not have (a CPU-only torch build on a GPU profile, say)."""


@dataclass(frozen=True)
class TrainingDevice:
    device: torch.device
    name: str  # what the iteration records: "cpu", or "cuda (<the GPU's name>)"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def views_per_pass(self, on_cpu: int) -> int:
        """Images per backbone pass: the caller's measured best on the CPU, a GPU-sized batch on a GPU."""
        return GPU_VIEWS_PER_PASS if self.is_cuda else on_cpu

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device)

    def mixed_precision(self, wanted: bool = True) -> AbstractContextManager[None]:
        """float16 autocast on a GPU (its tensor cores) where `wanted`; a no-op on the CPU, where float32 is as
        fast."""
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.is_cuda and wanted)

    def gradient_scaler(self, wanted: bool = True) -> torch.amp.GradScaler:
        """Keeps small float16 gradients from underflowing where mixed precision is `wanted`; otherwise (and on
        the CPU) a pass-through."""
        return torch.amp.GradScaler(self.device.type, enabled=self.is_cuda and wanted)


CPU = TrainingDevice(torch.device("cpu"), CPU_NAME)


def select_device(choice: TrainingDeviceChoice = "auto") -> TrainingDevice:
    """The device `choice` names; "auto" takes CUDA when torch sees a GPU. Asking for CUDA where there is none
    fails instead of training on the CPU for hours unnoticed."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return CPU
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "SEER_TRAINING_DEVICE is cuda but torch sees no GPU (torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'})."
        )
    return TrainingDevice(torch.device("cuda"), f"cuda ({torch.cuda.get_device_name(0)})")
