"""The official Custom Vision REST descriptions as test oracles: which operations exist, which route serves a
request, and whether a response body matches the operation's schema.

The descriptions (Swagger 2.0, MIT) live in `../shared/specs/customvision/`; tests that need them skip when that
folder is absent. Swagger 2.0 schemas are turned into JSON Schema 2019-09 for `jsonschema_rs` (the validator
schemathesis already brings): `x-nullable` becomes a `null` alternative, Swagger-only keywords are dropped, and
`modelAsString` enums are kept strict on purpose, since a value Seer invents is one no client switches on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT.parent / "shared" / "specs" / "customvision"
SPEC_CODES = ROOT / "tests" / "spec_codes.json"
DESCRIPTIONS = ("training-v3.3.json", "training-v3.4-preview.json", "prediction-v3.1.json")
_PARAMETER = re.compile(r"\{[^}]+\}")
_VERSION = re.compile(r"/v3\.[^/]+/")
# Swagger keywords with no JSON Schema meaning (readOnly only matters in requests).
_SWAGGER_ONLY = {"x-nullable", "x-ms-enum", "readOnly", "example", "discriminator", "xml", "externalDocs"}


def template(path: str) -> str:
    """A path with its parameters blanked and its case folded: how a route is matched (Seer's paths, like the
    real service's, are case-insensitive; the `{version}` segment matches every version prefix)."""
    return _PARAMETER.sub("{}", path).lower()


@dataclass(frozen=True)
class Operation:
    description: str
    operation_id: str
    method: str
    path: str  # full path with the version as a parameter, e.g. /customvision/{}/training/projects
    responses: dict[str, Any]

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = [re.escape(part) for part in self.path.split("{}")]
        return re.compile("[^/]+".join(parts) + "/?", re.IGNORECASE)


@dataclass
class Spec:
    """One description: its operations and definitions."""

    name: str
    raw: dict[str, Any]
    operations: list[Operation] = field(default_factory=list)

    @classmethod
    def load(cls, name: str) -> Spec:
        raw = json.loads((SPECS / name).read_text())
        base = _VERSION.sub("/{version}/", raw["basePath"])
        spec = cls(name, raw)
        for path, methods in raw["paths"].items():
            for method, operation in methods.items():
                if method != "parameters":
                    spec.operations.append(
                        Operation(
                            name,
                            operation["operationId"],
                            method,
                            template(base + path),
                            operation["responses"],
                        )
                    )
        return spec


@cache
def specs() -> tuple[Spec, ...]:
    return tuple(Spec.load(name) for name in DESCRIPTIONS)


def missing_operations(openapi: dict[str, Any]) -> list[str]:
    """`description OperationId` for every operation with no route of the same method and path template."""
    routes = {(method, template(path)) for path, methods in openapi["paths"].items() for method in methods}
    return sorted(
        f"{op.description} {op.operation_id}"
        for spec in specs()
        for op in spec.operations
        if (op.method, op.path) not in routes
    )


def error_codes() -> set[str]:
    """The spec's CustomVisionError codes, from the descriptions when present, else from the checked-in copy."""
    if SPECS.is_dir():
        return {
            code
            for spec in specs()
            for code in spec.raw["definitions"]["CustomVisionError"]["properties"]["code"]["enum"]
        }
    return set(json.loads(SPEC_CODES.read_text())["CustomVisionError.code"])


def to_json_schema(node: Any) -> Any:
    """One Swagger 2.0 schema node as JSON Schema: nullable unless `x-nullable: false` says otherwise (Swagger's
    default), `$ref`s left pointing into `#/definitions`."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: to_json_schema(value) for key, value in node.items() if key not in _SWAGGER_ONLY}
    if "properties" in node:
        converted["properties"] = {
            name: _nullable(to_json_schema(value), value) for name, value in node["properties"].items()
        }
    if "items" in node:
        converted["items"] = _nullable(to_json_schema(node["items"]), node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        converted["additionalProperties"] = _nullable(
            to_json_schema(node["additionalProperties"]), node["additionalProperties"]
        )
    return converted


def _nullable(converted: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """Allow null without hiding the inner errors (an `anyOf` would report only that no branch matched)."""
    if original.get("x-nullable", True) is False:
        return converted
    if isinstance(converted.get("type"), str):
        nullable = converted | {"type": [converted["type"], "null"]}
        if "enum" in converted:
            nullable["enum"] = [*converted["enum"], None]
        return nullable
    return {"if": {"type": "null"}, "else": converted}


@dataclass
class Outcome:
    """What one validated response showed."""

    operation: str
    status: int
    errors: list[str]


class ResponseValidator:
    """Validates responses against the operation's schema for their status (or `default`, the error shape)."""

    def __init__(self) -> None:
        self._validators: dict[tuple[str, str, str], jsonschema_rs.Draft201909Validator | None] = {}

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation a request went to, from the description of the request's version (v3.4-preview's for
        versions with no description here: it is a superset of v3.3)."""
        version = path.split("/")[2] if path.count("/") > 2 else ""
        candidates = [s for s in specs() if s.raw["basePath"].split("/")[2] == version] or specs()[1:]
        for spec in candidates + [s for s in specs() if s not in candidates]:
            for op in spec.operations:
                if op.method == method.lower() and op.pattern.fullmatch(path):
                    return op
        return None

    def check(self, op: Operation, status: int, body: Any) -> list[str]:
        """Every way `body` (parsed JSON, or None for an empty body) departs from the spec for `status`."""
        key = str(status) if str(status) in op.responses else "default"
        if key == "default" and status < 400:
            return [f"status {status} is not documented (documented: {sorted(op.responses)})"]
        validator = self._validator(op, key)
        if validator is None:
            return [] if body is None else [f"status {status} documents no body, got one"]
        errors = [
            f"{'/'.join(map(str, e.instance_path)) or '<body>'}: {e.message}"
            for e in validator.iter_errors(body)
        ]
        if status >= 400 and isinstance(body, dict) and body.get("code") not in error_codes():
            errors.append(f"code {body.get('code')!r} is not a CustomVisionError code")
        return errors

    def _validator(self, op: Operation, key: str) -> jsonschema_rs.Draft201909Validator | None:
        cache_key = (op.description, op.operation_id, key)
        if cache_key not in self._validators:
            schema = op.responses[key].get("schema")
            if schema is None or schema.get("type") == "file":
                self._validators[cache_key] = None
            else:
                definitions = next(s for s in specs() if s.name == op.description).raw["definitions"]
                root = to_json_schema(schema) | {
                    "definitions": {name: to_json_schema(d) for name, d in definitions.items()}
                }
                self._validators[cache_key] = jsonschema_rs.Draft201909Validator(root, validate_formats=True)
        return self._validators[cache_key]
