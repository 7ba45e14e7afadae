"""Model exports as the service and the export job share them: the platforms and flavors Custom Vision names, the
precisions Seer adds, and which combinations Seer exports.

`precision` is Seer's extension: an optional `precision` query parameter of ExportIteration and an extra
`precision` field in Export (the official SDK sends neither and ignores the field). Without it an export is FP32,
as Custom Vision's are."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from enum import StrEnum

ONNX_ARCHIVE_MODEL = "model.onnx"
"""The model's name in an ONNX export's zip, beside labels.txt: Custom Vision's layout, which code that opens its
downloads (such as ML.NET's Custom Vision samples) looks for."""


class ExportPlatform(StrEnum):
    CORE_ML = "CoreML"
    TENSORFLOW = "TensorFlow"
    DOCKER = "DockerFile"
    ONNX = "ONNX"
    VAIDK = "VAIDK"
    OPENVINO = "OpenVino"


class ExportFlavor(StrEnum):
    LINUX = "Linux"
    WINDOWS = "Windows"
    ONNX10 = "ONNX10"
    ONNX12 = "ONNX12"
    ARM = "ARM"
    TENSORFLOW_NORMAL = "TensorFlowNormal"
    TENSORFLOW_LITE = "TensorFlowLite"


class ExportPrecision(StrEnum):
    FP32 = "FP32"
    FP16 = "FP16"
    INT8 = "INT8"


@dataclass(frozen=True)
class PlatformSpec:
    """What Seer exports to one platform. `flavors[0]` is the flavor used when the request names none (None: the
    platform has no flavors)."""

    flavors: tuple[ExportFlavor | None, ...]
    precisions: tuple[ExportPrecision, ...] = (ExportPrecision.FP32,)


SUPPORTED: dict[ExportPlatform, PlatformSpec] = {
    ExportPlatform.ONNX: PlatformSpec(
        (ExportFlavor.ONNX12, ExportFlavor.ONNX10),
        (ExportPrecision.FP32, ExportPrecision.FP16, ExportPrecision.INT8),
    ),
    ExportPlatform.DOCKER: PlatformSpec((ExportFlavor.LINUX, ExportFlavor.ARM)),
    ExportPlatform.OPENVINO: PlatformSpec((None,), (ExportPrecision.FP32, ExportPrecision.FP16)),
    ExportPlatform.TENSORFLOW: PlatformSpec((ExportFlavor.TENSORFLOW_NORMAL, ExportFlavor.TENSORFLOW_LITE)),
    ExportPlatform.CORE_ML: PlatformSpec((None,), (ExportPrecision.FP32, ExportPrecision.FP16)),
}


def onnx_model_of_export(data: bytes) -> bytes:
    """The ONNX model an ONNX export holds: its zip's `model.onnx`, or the file itself for an export made before
    Seer zipped them (a bare model). The service serves INT8 exports this way (pipeline.services.publishing)."""
    if not data.startswith(b"PK\x03\x04"):  # an ONNX file starts with its protobuf's first field instead
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(ONNX_ARCHIVE_MODEL)
