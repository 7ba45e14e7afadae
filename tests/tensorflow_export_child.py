"""Runs TensorFlow exports in a child process for tests/test_export_tensorflow.py.

TensorFlow must not load in the pytest process: once it has, torch's first import of triton (the optimizers do it)
crashes the process with a segmentation fault, and later test modules train with torch. The export job never
imports torch, so only the tests need this.

Usage: python -m tests.tensorflow_export_child FOLDER NAME...
For each NAME it reads FOLDER/NAME.onnx and FOLDER/NAME.npy (a batch of inputs), exports every TensorFlow flavor
into FOLDER/NAME-FLAVOR/ and writes FOLDER/NAME-FLAVOR.npz (the runner's outputs on the batch, in order) and
FOLDER/NAME-FLAVOR.json ({"zip": path, "connections": outgoing connections tried during the export})."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import numpy as np

from pipeline.contract.exports import SUPPORTED, ExportFlavor, ExportPlatform, ExportPrecision
from training_job.exports.platform import SourceModel
from training_job.exports.tensorflow_format import EXPORTER


def export_and_run(
    source: SourceModel, inputs: np.ndarray, folder: Path, name: str, flavor: ExportFlavor
) -> None:
    connections: list[str] = []
    real_connect = socket.socket.connect

    def record(sock: socket.socket, address: object) -> None:
        connections.append(repr(address))
        raise OSError("no network during an export")

    socket.socket.connect = record  # type: ignore[method-assign]
    try:
        workdir = folder / f"{name}-{flavor}"
        workdir.mkdir()
        exported = EXPORTER.export(source, flavor, ExportPrecision.FP32, workdir)
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    assert exported.runner is not None
    np.savez(folder / f"{name}-{flavor}.npz", *exported.runner(inputs))
    summary = {"zip": str(exported.path), "connections": connections}
    (folder / f"{name}-{flavor}.json").write_text(json.dumps(summary))


def main(folder: str, *names: str) -> None:
    for name in names:
        source = SourceModel.from_bytes((Path(folder) / f"{name}.onnx").read_bytes())
        inputs = np.load(Path(folder) / f"{name}.npy")
        for flavor in SUPPORTED[ExportPlatform.TENSORFLOW].flavors:
            assert flavor is not None
            export_and_run(source, inputs, Path(folder), name, flavor)


if __name__ == "__main__":
    main(*sys.argv[1:])
