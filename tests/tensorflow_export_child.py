"""Runs TensorFlow exports in a child process for tests/test_export_tensorflow.py.

TensorFlow must not load in the pytest process: once it has, torch's first import of triton (the optimizers do it)
crashes the process with a segmentation fault, and later test modules train with torch. The export job never
imports torch, so only the tests need this.

Usage: python -m tests.tensorflow_export_child MODEL.onnx PICTURES.npy OUTDIR FLAVOR...
For each flavor it writes OUTDIR/FLAVOR/ (the export's workdir), OUTDIR/FLAVOR.npy (the runner's first output on
the pictures) and OUTDIR/FLAVOR.json ({"zip": path, "connections": outgoing connections tried during the export})."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import numpy as np

from pipeline.contract.exports import ExportFlavor, ExportPrecision
from training_job.exports.platform import SourceModel
from training_job.exports.tensorflow_format import EXPORTER


def export_and_run(source: SourceModel, pictures: np.ndarray, outdir: Path, flavor: ExportFlavor) -> None:
    connections: list[str] = []
    real_connect = socket.socket.connect

    def record(sock: socket.socket, address: object) -> None:
        connections.append(repr(address))
        raise OSError("no network during an export")

    socket.socket.connect = record  # type: ignore[method-assign]
    try:
        workdir = outdir / flavor
        workdir.mkdir()
        exported = EXPORTER.export(source, flavor, ExportPrecision.FP32, workdir)
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    assert exported.runner is not None
    np.save(outdir / f"{flavor}.npy", exported.runner(pictures)[0])
    (outdir / f"{flavor}.json").write_text(
        json.dumps({"zip": str(exported.path), "connections": connections})
    )


def main(model: str, pictures: str, outdir: str, *flavors: str) -> None:
    source = SourceModel.from_bytes(Path(model).read_bytes())
    for flavor in flavors:
        export_and_run(source, np.load(pictures), Path(outdir), ExportFlavor(flavor))


if __name__ == "__main__":
    main(*sys.argv[1:])
