"""OpenVINO export: the ONNX model converted to OpenVINO IR (model.xml + model.bin) with the `openvino` package,
zipped with labels.txt and a README. FP16 stores the weights as float16 (`compress_to_fp16`); OpenVINO's CPU
plugin widens them again when it runs.

The model's ONNX metadata (labels, preprocessing, classification type...) travels in the IR's rt_info under
"framework", so the IR describes itself. The runner compiles the exported IR for the CPU with
INFERENCE_PRECISION_HINT f32: on processors with bfloat16 units OpenVINO otherwise computes in bfloat16 by
default, which is faster but differs from the service (here: 3e-3 on a classifier's probabilities, 0.1 on a
detector's scores)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import openvino as ov

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.contract.onnx_model import INPUT, MetadataKey
from training_job.exports.platform import LABELS_FILE, ExportedModel, ExportError, Runner, SourceModel

MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
README = "README.md"
RT_INFO_SECTION = "framework"  # where OpenVINO's ONNX frontend puts the source model's metadata
PRECISE = {"INFERENCE_PRECISION_HINT": "f32"}


class OpenVinoExporter:
    """ExportPlatform.OPENVINO: IR xml+bin in a zip, run by OpenVINO's CPU plugin."""

    platform = ExportPlatform.OPENVINO

    def export(
        self, source: SourceModel, flavor: ExportFlavor | None, precision: ExportPrecision, workdir: Path
    ) -> ExportedModel:
        if precision not in (ExportPrecision.FP32, ExportPrecision.FP16):
            raise ExportError(f"OpenVINO exports FP32 or FP16, not {precision}.")
        model = convert(source)
        ir_dir = workdir / "ir"
        ir_dir.mkdir()
        ov.save_model(model, ir_dir / MODEL_XML, compress_to_fp16=precision == ExportPrecision.FP16)
        archive = workdir / "openvino.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            zipped.write(ir_dir / MODEL_XML, MODEL_XML)
            zipped.write(ir_dir / MODEL_BIN, MODEL_BIN)
            zipped.writestr(LABELS_FILE, source.labels_text)
            zipped.writestr(README, readme(source, precision))
        return ExportedModel(path=archive, runner=runner(ir_dir / MODEL_XML))


def convert(source: SourceModel) -> ov.Model:
    """The ONNX model as an OpenVINO model whose rt_info holds the ONNX metadata."""
    try:
        model = ov.convert_model(io.BytesIO(source.onnx_bytes))
    except Exception as error:  # OpenVINO raises its own exception types for graphs it cannot read
        raise ExportError(f"OpenVINO cannot convert this model: {_reason(error)}") from error
    names = [output.get_any_name() for output in model.outputs]
    if names != source.output_names:
        raise ExportError(f"OpenVINO changed the model's outputs from {source.output_names} to {names}.")
    # Set explicitly rather than relying on the ONNX frontend copying metadata_props.
    for key, value in source.metadata.items():
        model.set_rt_info(value, [RT_INFO_SECTION, key])
    return model


def _reason(error: Exception) -> str:
    """The summary lines of an OpenVINO conversion error ("-- No conversion rule found for operations: ..."),
    without the C++ source location and documentation links around them."""
    summary = [line.lstrip("- ").strip() for line in str(error).splitlines() if line.startswith("--")]
    return "; ".join(summary) or str(error).strip()


def runner(xml: Path) -> Runner:
    """Runs the IR on OpenVINO's CPU plugin in float32, returning the outputs in the ONNX model's order."""
    compiled = ov.Core().compile_model(xml, "CPU", PRECISE)

    def run(batch: np.ndarray) -> list[np.ndarray]:
        results = compiled({INPUT: batch})
        return [np.asarray(results[output]) for output in compiled.outputs]

    return run


def readme(source: SourceModel, precision: ExportPrecision) -> str:
    """How to run the export, in the user's terms: input layout, preprocessing, outputs."""
    preprocessing = json.loads(source.metadata.get(MetadataKey.PREPROCESSING, "{}"))
    size = source.input_size
    if source.is_detector:
        outputs = (
            "- `detected_boxes` float32 [N, 200, 4]: left, top, width, height, normalised to the image\n"
            "- `detected_scores` float32 [N, 200]: by falling score, 0 pads\n"
            "- `detected_classes` int64 [N, 200]: index into labels.txt\n"
        )
    else:
        outputs = (
            f"- `model_outputs` float32 [N, {len(source.labels)}]: one probability per line of labels.txt\n"
        ) + source.unknown_text()
    return f"""# Seer model: OpenVINO IR ({precision})

`{MODEL_XML}` + `{MODEL_BIN}` is an OpenVINO IR (OpenVINO 2023.0 or later). `{LABELS_FILE}` lists the tags in output
order. The IR's rt_info holds the model's metadata under "{RT_INFO_SECTION}" (labels with tag ids, preprocessing,
classification type).

## Input

`{INPUT}`: float32 [N, 3, {size}, {size}], NCHW, RGB, values 0..255 (not normalised: the model does that).
Preprocessing:

```json
{json.dumps(preprocessing, indent=2)}
```

## Outputs

{outputs}
## Run

```python
import numpy as np
import openvino as ov
from PIL import Image

compiled = ov.Core().compile_model("{MODEL_XML}", "CPU", {{"INFERENCE_PRECISION_HINT": "f32"}})
image = Image.open("picture.jpg").convert("RGB")  # then resize/crop as described above to {size} x {size}
batch = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None]
outputs = compiled({{"{INPUT}": batch}})
print([outputs[output] for output in compiled.outputs])
labels = ov.Core().read_model("{MODEL_XML}").get_rt_info(["{RT_INFO_SECTION}", "labels"]).astype(str)  # JSON
```

Without the f32 hint, processors with bfloat16 units run in bfloat16: faster, but scores move (measured on a
Xeon with AMX: 3e-3 on a classifier's probabilities, up to 0.1 on a detector's scores).
"""


EXPORTER = OpenVinoExporter()
