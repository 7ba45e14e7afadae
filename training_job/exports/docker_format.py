"""The `DockerFile` export: a zip like Custom Vision's exported containers (a Dockerfile, a small HTTP server
answering POST /image and POST /url, the model and its labels, a README). The server's files are the real,
linted files under `docker_app/`; the export adds the iteration's model (its bytes unchanged), `labels.txt` and
Seer's own `pipeline/vision/preprocessing.py` and `reduced_decode.py`, read from the installed package so the
container turns pictures into model inputs with the service's code. The parity runner runs the model inside the zip, the bytes the container serves."""

from __future__ import annotations

import zipfile
from importlib import resources
from pathlib import Path

import onnxruntime as ort

from pipeline.contract.exports import SUPPORTED, ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.contract.onnx_model import INPUT
from training_job.exports.platform import LABELS_FILE, ExportedModel, ExportError, Runner, SourceModel

TEMPLATE = Path(__file__).with_name("docker_app")
MODEL_ENTRY = "app/model.onnx"
LABELS_ENTRY = f"app/{LABELS_FILE}"
# Seer's own modules the server imports (numpy and Pillow only): the preprocessing, and the decoding steps the
# service applies first (normalised and stored sizes, reduction, RGB with transparency flattened onto white).
SHIPPED_MODULES = ("preprocessing.py", "reduced_decode.py")
LINUX_BASE = "FROM python:3.11-slim\n"
# Each flavor's base image, replacing the template's FROM line.
BASE_IMAGES = {
    ExportFlavor.LINUX: LINUX_BASE,
    ExportFlavor.ARM: "FROM arm64v8/python:3.11-slim\n",
}


def dockerfile(flavor: ExportFlavor) -> str:
    """The template's Dockerfile on the flavor's base image."""
    template = (TEMPLATE / "Dockerfile").read_text()
    if template.count(LINUX_BASE) != 1:
        raise ExportError(f"The Docker template must hold exactly one {LINUX_BASE.strip()!r} line.")
    return template.replace(LINUX_BASE, BASE_IMAGES[flavor])


def template_files() -> list[Path]:
    """The server's files as they are in the repository (no caches), relative to the template folder."""
    return sorted(
        path.relative_to(TEMPLATE)
        for path in TEMPLATE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.name != "Dockerfile"
    )


def shipped_module(name: str) -> bytes:
    """A module of `pipeline.vision` as installed, so the container runs the service's code, not a copy."""
    return resources.files("pipeline.vision").joinpath(name).read_bytes()


def zip_runner(archive: Path) -> Runner:
    """ONNX Runtime on the model inside the zip, taking the batch as given."""
    with zipfile.ZipFile(archive) as opened:
        session = ort.InferenceSession(opened.read(MODEL_ENTRY), providers=["CPUExecutionProvider"])
    return lambda batch: list(session.run(None, {INPUT: batch}))


class DockerExporter:
    platform = ExportPlatform.DOCKER

    def export(
        self, source: SourceModel, flavor: ExportFlavor | None, precision: ExportPrecision, workdir: Path
    ) -> ExportedModel:
        spec = SUPPORTED[self.platform]
        flavor = flavor or spec.flavors[0]
        if flavor not in spec.flavors:
            raise ExportError(f"DockerFile exports come in the flavors Linux and ARM, not {flavor}.")
        if precision not in spec.precisions:
            raise ExportError(f"DockerFile exports are FP32; {precision} is not offered.")
        path = workdir / f"{self.platform}.{flavor}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("Dockerfile", dockerfile(flavor))
            for relative in template_files():
                archive.write(TEMPLATE / relative, relative.as_posix())
            archive.writestr(MODEL_ENTRY, source.onnx_bytes)
            archive.writestr(LABELS_ENTRY, source.labels_text)
            for name in SHIPPED_MODULES:
                archive.writestr(f"app/{name}", shipped_module(name))
        return ExportedModel(path=path, runner=zip_runner(path))


EXPORTER = DockerExporter()
