"""Every error or status code Seer spells out is one the official descriptions list: clients switch on these strings,
so a code spelled differently (`Multiclass` for `MultiClass`) is a code they never see.

The enums come from `../shared/specs/customvision/` when it is there, else from `tests/spec_codes.json`, a copy of
just those lists (the descriptions are MIT); with the specs present the copy is checked against them."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT.parent / "shared" / "specs" / "customvision"
COPY = ROOT / "tests" / "spec_codes.json"
SOURCES = ("pipeline", "training_job")
CODE = re.compile(r"(BadRequest|NotFound|Error|Forbidden|Unauthorized|Conflict)[A-Za-z]*")
# The 401 comes from the API gateway in front of Custom Vision, before the service's own codes apply.
GATEWAY_CODES = {"Unauthorized"}


def _spec_enums() -> dict[str, list[str]]:
    training = json.loads((SPECS / "training-v3.4-preview.json").read_text())["definitions"]
    prediction = json.loads((SPECS / "prediction-v3.1.json").read_text())["definitions"]
    return {
        "CustomVisionError.code": sorted(
            set(training["CustomVisionError"]["properties"]["code"]["enum"])
            | set(prediction["CustomVisionError"]["properties"]["code"]["enum"])
        ),
        "ImageCreateResult.status": training["ImageCreateResult"]["properties"]["status"]["enum"],
        "ImageMetadataUpdateEntry.status": training["ImageMetadataUpdateEntry"]["properties"]["status"][
            "enum"
        ],
    }


def _copied_enums() -> dict[str, list[str]]:
    return {k: v for k, v in json.loads(COPY.read_text()).items() if not k.startswith("_")}


def _known_codes() -> set[str]:
    enums = _spec_enums() if SPECS.is_dir() else _copied_enums()
    return {code for values in enums.values() for code in values} | GATEWAY_CODES


def _strings() -> Iterator[tuple[str, int, ast.Constant | ast.JoinedStr]]:
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant | ast.JoinedStr):
                    yield str(path.relative_to(ROOT)), node.lineno, node


def test_every_code_literal_is_in_the_spec() -> None:
    known = _known_codes()
    unknown = [
        f"{path}:{line} {node.value}"
        for path, line, node in _strings()
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and CODE.fullmatch(node.value)
        and node.value not in known
    ]
    assert unknown == []


def test_no_code_is_assembled_from_parts() -> None:
    """An f-string such as f"BadRequest{kind}..." escapes the check above; codes are written out in full."""
    assembled = [
        f"{path}:{line}"
        for path, line, node in _strings()
        if isinstance(node, ast.JoinedStr)
        and node.values
        and isinstance(node.values[0], ast.Constant)
        and CODE.fullmatch(node.values[0].value)
    ]
    assert assembled == []


@pytest.mark.skipif(
    not SPECS.is_dir(), reason="../shared/specs/customvision is absent; the copy is used as is"
)
def test_the_copy_matches_the_spec() -> None:
    assert _copied_enums() == _spec_enums()
