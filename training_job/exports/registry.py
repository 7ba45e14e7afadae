"""Which module exports to which platform. Modules are imported only when their platform is asked for, so a
converter that is missing or broken fails its own platform's exports and no other."""

from __future__ import annotations

import importlib

from pipeline.contract.exports import ExportPlatform
from training_job.exports.platform import Exporter, ExportError

MODULES: dict[ExportPlatform, str] = {
    ExportPlatform.ONNX: "training_job.exports.onnx_format",
    ExportPlatform.DOCKER: "training_job.exports.docker_format",
    ExportPlatform.OPENVINO: "training_job.exports.openvino_format",
    ExportPlatform.TENSORFLOW: "training_job.exports.tensorflow_format",
    ExportPlatform.CORE_ML: "training_job.exports.coreml_format",
}


def exporter(platform: ExportPlatform) -> Exporter:
    """The platform's EXPORTER, or ExportError saying why it cannot be had here."""
    module_name = MODULES.get(platform)
    if module_name is None:
        raise ExportError(f"Seer does not export to {platform.value}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ExportError(f"The {platform.value} exporter is not available here: {error}.") from error
    return module.EXPORTER
