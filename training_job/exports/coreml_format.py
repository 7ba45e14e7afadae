"""Core ML export: an ML Program (`.mlpackage`, iOS 15 / macOS 12 or later) zipped with labels.txt and a README.

Path: ONNX -> onnx2torch (a torch.fx module rebuilt op for op) -> TorchScript trace -> coremltools' PyTorch
frontend. coremltools dropped its ONNX frontend (version 6); its PyTorch frontend is the one Apple maintains.
ONNX -> TensorFlow -> coremltools would need onnx2tf and tensorflow, and coremltools' TensorFlow frontend is only
tested up to TF 2.12; writing the MIL program by hand would be a second ONNX converter to maintain. The rebuilt
torch module is checked against ONNX Runtime before tracing (`outputs_agree`), so what coremltools converts
computes what the service computes.

Both converters need small fills for the operators our models use: the graph is prepared for onnx2torch
(`_prepared`: empty optional Clip bounds, graph outputs taken from multi-output nodes), onnx2torch gets Trilu and
the opset-16 comparisons (`_extend_onnx2torch`), and coremltools gets aten `prod` and the long names torch traces
record for comparisons and `broadcast_to` (`_extend_coremltools`).

A Core ML model cannot run on Linux: the runner is None and `check_spec` inspects the written model instead.
This is the one export module that needs torch; it imports torch, onnx2torch and coremltools inside functions,
and torch's compiler before coremltools (`load_coremltools`): coremltools imports tensorflow when it is
installed, and a process that imports triton (loaded by torch's compiler) after tensorflow 2.21 crashes."""

from __future__ import annotations

import functools
import importlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.contract.onnx_model import DETECTED_BOXES, DETECTED_CLASSES, DETECTED_SCORES, INPUT, MetadataKey
from training_job.exports.platform import LABELS_FILE, ExportedModel, ExportError, SourceModel

PACKAGE = "model.mlpackage"
README = "README.md"
# What a Core ML classifier outputs (coremltools' names): the most likely tag's name, and every tag's probability.
CLASS_LABEL = "classLabel"
CLASS_PROBABILITIES = "classLabel_probs"
CLIP_LOWEST = "seer_clip_lowest"
TORCH_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-3
DETECTIONS = 200  # the detector's outputs hold this many places (pipeline.contract.onnx_model)


class CoreMlExporter:
    """ExportPlatform.CORE_ML: an ML Program whose spec is checked here (it cannot run on Linux)."""

    platform = ExportPlatform.CORE_ML

    def export(
        self, source: SourceModel, flavor: ExportFlavor | None, precision: ExportPrecision, workdir: Path
    ) -> ExportedModel:
        if precision not in (ExportPrecision.FP32, ExportPrecision.FP16):
            raise ExportError(f"Core ML exports FP32 or FP16, not {precision}.")
        source = (
            source.without_unknown_score()
        )  # a Core ML classifier outputs its label and probabilities only
        model = convert(source, precision)
        package = workdir / PACKAGE
        model.save(str(package))
        check_spec(load_coremltools().utils.load_spec(str(package)), source, precision)
        archive = workdir / "coreml.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(package.rglob("*")):
                if path.is_file():
                    zipped.write(path, path.relative_to(workdir).as_posix())
            zipped.writestr(LABELS_FILE, source.labels_text)
            zipped.writestr(README, readme(source, precision))
        return ExportedModel(path=archive, runner=None)


def convert(source: SourceModel, precision: ExportPrecision) -> Any:
    """The ONNX model as a coremltools MLModel (ML Program) carrying the ONNX metadata."""
    import torch

    _extend_onnx2torch()
    module = _torch_module(source)
    _extend_coremltools()
    ct = load_coremltools()

    probe = torch.from_numpy(_probe(source.input_size, batch=1))
    try:
        with torch.no_grad():
            traced = torch.jit.trace(module, probe, check_trace=False)  # checked against ONNX Runtime above
        model = ct.convert(
            traced,
            inputs=[
                ct.ImageType(
                    name=INPUT,
                    shape=(1, 3, source.input_size, source.input_size),
                    color_layout=ct.colorlayout.RGB,
                    scale=1.0,
                )
            ],
            outputs=[ct.TensorType(name=name) for name in source.output_names],
            classifier_config=None
            if source.is_detector
            else ct.ClassifierConfig([label.name for label in source.labels]),
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16
            if precision == ExportPrecision.FP16
            else ct.precision.FLOAT32,
            minimum_deployment_target=ct.target.iOS15,
        )
    except Exception as error:  # coremltools raises plain exceptions for operators it cannot convert
        raise ExportError(f"coremltools cannot convert this model: {error}") from error
    model.short_description = "Seer model; see README.md for the input and outputs."
    model.user_defined_metadata.update(source.metadata)
    return model


def _torch_module(source: SourceModel) -> Any:
    """The ONNX graph rebuilt in torch by onnx2torch, checked against ONNX Runtime."""
    import torch
    from onnx2torch import convert as onnx_to_torch

    # onnx2torch raises NotImplementedError, KeyError... for what it cannot rebuild.
    try:
        module = onnx_to_torch(_prepared(source.onnx_bytes)).eval()
    except Exception as error:
        raise ExportError(f"onnx2torch cannot rebuild this model in torch: {error!r}") from error
    batch = _probe(source.input_size, batch=2)
    expected = ort.InferenceSession(source.onnx_bytes, providers=["CPUExecutionProvider"]).run(
        None, {INPUT: batch}
    )
    with torch.no_grad():
        outputs = module(torch.from_numpy(batch))
    got = [output.numpy() for output in (outputs if isinstance(outputs, list | tuple) else [outputs])]
    if not outputs_agree(source, expected, got):
        raise ExportError(
            "The model rebuilt in torch for Core ML does not compute what ONNX Runtime computes."
        )
    return module


def outputs_agree(source: SourceModel, expected: list[np.ndarray], got: list[np.ndarray]) -> bool:
    """Every output within TORCH_TOLERANCE; a detector's boxes (BOX_TOLERANCE) and classes are compared only at
    places whose score is clear of its neighbours', since near-equal scores may swap places between runtimes."""
    if [array.shape for array in got] != [array.shape for array in expected]:
        return False
    if not source.is_detector:
        return all(
            np.abs(mine - theirs).max() <= TORCH_TOLERANCE for mine, theirs in zip(got, expected, strict=True)
        )
    mine, theirs = (
        dict(zip(source.output_names, got, strict=True)),
        dict(zip(source.output_names, expected, strict=True)),
    )
    scores = theirs[DETECTED_SCORES]
    if np.abs(mine[DETECTED_SCORES] - scores).max() > TORCH_TOLERANCE:
        return False
    apart = np.abs(np.diff(scores, axis=1)) > TORCH_TOLERANCE
    clear = np.ones(scores.shape, dtype=bool)
    clear[:, 1:] &= apart
    clear[:, :-1] &= apart
    boxes_differ = np.abs(mine[DETECTED_BOXES] - theirs[DETECTED_BOXES])[clear].max(initial=0)
    return boxes_differ <= BOX_TOLERANCE and np.array_equal(
        mine[DETECTED_CLASSES][clear], theirs[DETECTED_CLASSES][clear]
    )


def _probe(size: int, batch: int) -> np.ndarray:
    """A fixed pseudo-random input in the model's range (0..255)."""
    return np.random.default_rng(0).uniform(0, 255, (batch, 3, size, size)).astype(np.float32)


def _prepared(onnx_bytes: bytes) -> onnx.ModelProto:
    """The graph in the form onnx2torch reads: every Clip bound given (an empty lower bound becomes float32's
    lowest, an empty upper bound is dropped), and every graph output from a single-output node (onnx2torch returns
    a multi-output node's whole tuple, e.g. TopK's values and indices, as the graph output)."""
    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    graph.initializer.append(
        numpy_helper.from_array(np.array(np.finfo(np.float32).min, dtype=np.float32), CLIP_LOWEST)
    )
    for node in graph.node:
        if node.op_type == "Clip":
            inputs = list(node.input)
            while inputs[-1] == "":
                inputs.pop()
            if len(inputs) > 1 and inputs[1] == "":
                inputs[1] = CLIP_LOWEST
            node.ClearField("input")
            node.input.extend(inputs)
    renamed = {output.name: f"{output.name}_seer_inner" for output in graph.output}
    for node in graph.node:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                names[index] = renamed.get(name, name)
    graph.node.extend(onnx.helper.make_node("Identity", [inner], [outer]) for outer, inner in renamed.items())
    return model


@functools.cache
def _extend_onnx2torch() -> None:
    """Register, once per process, the onnx2torch converters our models need (see the module docstring)."""
    import torch
    from onnx2torch.node_converters.registry import add_converter, get_converter
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, get_const_value

    for comparison in ("LessOrEqual", "GreaterOrEqual"):  # opset 16 only added bfloat16
        add_converter(operation_type=comparison, version=16)(get_converter(comparison, 12))

    class Trilu(torch.nn.Module):
        def __init__(self, upper: bool, diagonal: int) -> None:
            super().__init__()
            self.upper, self.diagonal = upper, diagonal

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.triu(x, self.diagonal) if self.upper else torch.tril(x, self.diagonal)

    @add_converter(operation_type="Trilu", version=14)
    def _trilu(node: Any, graph: Any) -> Any:
        diagonal = node.input_values[1] if len(node.input_values) > 1 else ""
        return OperationConverterResult(
            torch_module=Trilu(
                bool(node.attributes.get("upper", 1)),
                int(get_const_value(diagonal, graph)) if diagonal else 0,
            ),
            onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values),
        )


@functools.cache
def load_coremltools() -> Any:
    """The coremltools module, imported after torch's compiler (see the module docstring)."""
    importlib.import_module("torch._dynamo")
    import coremltools

    return coremltools


@functools.cache
def _extend_coremltools() -> None:
    """Register, once per process, the coremltools torch-op converters our models need (see the module
    docstring)."""
    load_coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch import ops
    from coremltools.converters.mil.frontend.torch.torch_op_registry import register_torch_op

    # Re-registering each short name leaves it as it is; the alias adds the long name torch traces record.
    for converter, long_name in (
        (ops.le, "less_equal"),
        (ops.ge, "greater_equal"),
        (ops.lt, "less"),
        (ops.gt, "greater"),
        (ops.expand, "broadcast_to"),
    ):
        register_torch_op(converter, torch_alias=[long_name], override=True)

    @register_torch_op
    def prod(context: Any, node: Any) -> None:
        inputs = ops._get_inputs(context, node)
        axes = [int(inputs[1].val)] if len(inputs) > 2 else None
        keep_dims = bool(inputs[2].val) if len(inputs) > 2 else False
        context.add(mb.reduce_prod(x=inputs[0], axes=axes, keep_dims=keep_dims, name=node.name))


def check_spec(spec: Any, source: SourceModel, precision: ExportPrecision) -> None:
    """Raise ExportError unless the written model has the input, outputs, labels and metadata Seer promises."""
    load_coremltools()
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2

    problems: list[str] = []
    description = spec.description
    [image] = description.input if len(description.input) == 1 else [None]
    if image is None or image.name != INPUT or image.type.WhichOneof("Type") != "imageType":
        problems.append(f"the input is not one image named {INPUT!r}")
    elif (image.type.imageType.width, image.type.imageType.height) != (source.input_size,) * 2 or (
        image.type.imageType.colorSpace != FeatureTypes_pb2.ImageFeatureType.RGB
    ):
        problems.append(f"the input is not a {source.input_size} x {source.input_size} RGB image")
    outputs = {output.name: output.type for output in description.output}
    expected_outputs = source.output_names if source.is_detector else [CLASS_LABEL, CLASS_PROBABILITIES]
    if sorted(outputs) != sorted(expected_outputs):
        problems.append(f"the outputs are {sorted(outputs)}, not {sorted(expected_outputs)}")
    elif source.is_detector:
        for name, shape in zip(
            source.output_names, ([1, DETECTIONS, 4], [1, DETECTIONS], [1, DETECTIONS]), strict=True
        ):
            array = outputs[name].multiArrayType
            wanted = FeatureTypes_pb2.ArrayFeatureType.INT32 if name == DETECTED_CLASSES else None
            if list(array.shape) != shape or (wanted is not None and array.dataType != wanted):
                problems.append(f"{name} is {list(array.shape)} of type {array.dataType}, not {shape}")
    else:
        labels = _class_labels(spec)
        if labels != [label.name for label in source.labels]:
            problems.append(f"the class labels are {labels}")
        if outputs[CLASS_LABEL].WhichOneof("Type") != "stringType" or (
            outputs[CLASS_PROBABILITIES].dictionaryType.WhichOneof("KeyType") != "stringKeyType"
        ):
            problems.append(f"{CLASS_LABEL} is not a tag name or {CLASS_PROBABILITIES} not a tag dictionary")
    metadata = dict(description.metadata.userDefined)
    missing = [key for key, value in source.metadata.items() if metadata.get(key) != value]
    if missing:
        problems.append(f"the metadata lacks {missing}")
    wanted_weights = (
        MIL_pb2.DataType.FLOAT16 if precision == ExportPrecision.FP16 else MIL_pb2.DataType.FLOAT32
    )
    if wanted_weights not in _weight_types(spec):
        problems.append(f"no weights are stored as {precision}")
    if problems:
        raise ExportError("The Core ML model is not what Seer promises: " + "; ".join(problems) + ".")


def _operations(spec: Any) -> Iterator[Any]:
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            yield from block.operations


def _class_labels(spec: Any) -> list[str]:
    """The classes of the ML Program's classify operation (where a Core ML program keeps its class labels)."""
    return [
        label
        for operation in _operations(spec)
        if operation.type == "classify"
        for argument in operation.inputs["classes"].arguments
        for value in argument.value.immediateValue.list.values
        for label in value.immediateValue.tensor.strings.values
    ]


def _weight_types(spec: Any) -> set[int]:
    """The data types of the ML Program's constants (its weights)."""
    return {
        output.type.tensorType.dataType
        for operation in _operations(spec)
        if operation.type == "const"
        for output in operation.outputs
    }


def readme(source: SourceModel, precision: ExportPrecision) -> str:
    """How to use the export on Apple platforms: input, preprocessing, outputs."""
    preprocessing = json.loads(source.metadata.get(MetadataKey.PREPROCESSING, "{}"))
    size = source.input_size
    if source.is_detector:
        scaling = "`.scaleFill` (the whole image stretched, nothing cropped)"
        outputs = (
            "- `detected_boxes` [1, 200, 4]: left, top, width, height, normalised to the image\n"
            "- `detected_scores` [1, 200]: by falling score, 0 pads\n"
            "- `detected_classes` int32 [1, 200]: index into labels.txt\n"
        )
    else:
        scaling = "`.centerCrop` (shortest side to the size, centre square)"
        outputs = (
            f"- `{CLASS_LABEL}`: the most likely tag's name\n"
            f"- `{CLASS_PROBABILITIES}`: a dictionary from tag name to probability\n"
        )
    return f"""# Seer model: Core ML ({precision})

`{PACKAGE}` is a Core ML ML Program (iOS 15, macOS 12 or later); open it in Xcode or load it with
`MLModel(contentsOf:)` after compiling. `{LABELS_FILE}` lists the tags in output order; the model's metadata
(user-defined: labels with tag ids, preprocessing, classification type) holds the same facts.

## Input

`{INPUT}`: an RGB image of {size} x {size} pixels, values 0..255 (the model normalises them itself). With Vision,
use `VNCoreMLRequest` with imageCropAndScaleOption {scaling}. Seer's own preprocessing:

```json
{json.dumps(preprocessing, indent=2)}
```

## Outputs

{outputs}"""


EXPORTER = CoreMlExporter()
