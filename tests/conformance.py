"""The official Custom Vision REST descriptions as test oracles: which operations exist, which route serves a
request, and whether a response body matches the operation's schema; and what the validated sessions of
tests/test_conformance*.py share: the known gaps and expected mismatches, the `Recorder` response hook, the raw
HTTP client it watches and the `Tally` of one run's sessions.

The descriptions (Swagger 2.0, MIT) live in `../shared/specs/customvision/`; tests that need them skip when that
folder is absent. Swagger 2.0 schemas are turned into JSON Schema 2019-09 for `jsonschema_rs` (the validator
schemathesis already brings): `x-nullable` becomes a `null` alternative, Swagger-only keywords are dropped, and
`modelAsString` enums are kept strict on purpose, since a value Seer invents is one no client switches on."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT.parent / "shared" / "specs" / "customvision"
SPEC_CODES = ROOT / "tests" / "spec_codes.json"
# The descriptions cut down to a few core operations and the definitions they use (MIT, Copyright (c) 2017
# Microsoft, as in ../shared/specs/customvision/LICENSE), so a smaller set of the same checks runs without ../shared.
SPEC_SUBSET = ROOT / "tests" / "spec_subset.json"
SUBSET_OPERATIONS = (
    "GetDomains",
    "CreateProject",
    "GetProject",
    "UpdateProject",
    "CreateTag",
    "GetTags",
    "CreateImagesFromFiles",
    "GetImages",
    "GetTaggedImageCount",
    "GetIterations",
    "ClassifyImageWithNoStore",
    "UnpublishIteration",
    "DeleteProject",
)
DESCRIPTIONS = ("training-v3.3.json", "training-v3.4-preview.json", "prediction-v3.1.json")
_PARAMETER = re.compile(r"\{[^}]+\}")
_VERSION = re.compile(r"/v3\.[^/]+/")
# Swagger keywords with no JSON Schema meaning (readOnly only matters in requests).
_SWAGGER_ONLY = {"x-nullable", "x-ms-enum", "readOnly", "example", "discriminator", "xml", "externalDocs"}

log = logging.getLogger(__name__)

needs_specs = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"{SPECS} is absent: the description-driven conformance checks are skipped"
)

# Operations with no route yet, each owned by another issue; a new gap (or one closed) fails
# test_every_operation_has_a_route, and the validated sessions must reach every other operation. None today.
KNOWN_MISSING: list[str] = []

# Responses that depart from the spec on purpose or pending a fix elsewhere: "OperationId status field" -> reason.
EXPECTED_MISMATCHES: dict[str, str] = {}


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
        """From ../shared when it is present, else from the checked-in subset."""
        raw = (
            json.loads((SPECS / name).read_text())
            if SPECS.is_dir()
            else json.loads(SPEC_SUBSET.read_text())[name]
        )
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


def subset(raw: dict[str, Any], operation_ids: tuple[str, ...] = SUBSET_OPERATIONS) -> dict[str, Any]:
    """A description with only the paths of `operation_ids` and the definitions their responses reach."""
    paths = {
        path: {
            method: op
            for method, op in methods.items()
            if method != "parameters" and op["operationId"] in operation_ids
        }
        for path, methods in raw["paths"].items()
    }
    paths = {path: methods for path, methods in paths.items() if methods}
    needed: set[str] = set()
    pending: list[Any] = [paths, {"$ref": "#/definitions/CustomVisionError"}]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/definitions/") and (name := ref.rsplit("/", 1)[1]) not in needed:
                needed.add(name)
                pending.append(raw["definitions"][name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    kept_paths = {
        path: {
            method: {"operationId": op["operationId"], "responses": op["responses"]}
            for method, op in methods.items()
        }
        for path, methods in paths.items()
    }
    definitions = {name: raw["definitions"][name] for name in sorted(needed)}
    return _without_prose({"basePath": raw["basePath"], "paths": kept_paths, "definitions": definitions})


def _without_prose(node: Any) -> Any:
    """The node less its descriptive texts (a property that is called "description" is kept: it is a dict)."""
    if isinstance(node, list):
        return [_without_prose(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _without_prose(value)
        for key, value in node.items()
        if not (key in ("description", "summary", "title") and isinstance(value, str))
    }


def routed_operations() -> set[str]:
    """The OperationIds Seer serves: every operation of the descriptions but the KNOWN_MISSING ones."""
    return {
        op.operation_id
        for spec in specs()
        for op in spec.operations
        if f"{op.description} {op.operation_id}" not in KNOWN_MISSING
    }


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
        candidates = [s for s in specs() if s.raw["basePath"].split("/")[2] == version] or list(specs()[1:])
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


@dataclass
class Recorder:
    """An httpx response hook: validates every response of a session against its operation and keeps the tally."""

    validator: ResponseValidator = field(default_factory=ResponseValidator)
    outcomes: list[Outcome] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        op = self.validator.operation(request.method, request.url.path)
        if op is None:
            self.unmatched.append(f"{request.method} {request.url.path}")
            return
        json_body = "json" in response.headers.get("content-type", "")
        body = response.json() if response.content and json_body else None  # GetArtifact answers a file
        errors = self.validator.check(op, response.status_code, body)
        self.outcomes.append(Outcome(op.operation_id, response.status_code, errors))

    @property
    def covered(self) -> set[str]:
        """Operations with at least one validated response."""
        return {outcome.operation for outcome in self.outcomes}

    @property
    def succeeded(self) -> set[str]:
        """Operations with at least one validated success (2xx) response."""
        return {outcome.operation for outcome in self.outcomes if outcome.status < 300}

    @property
    def mismatches(self) -> dict[str, list[str]]:
        """Errors by "OperationId status field" (array indices as `*`), the key EXPECTED_MISMATCHES uses."""
        found: dict[str, list[str]] = {}
        for outcome in self.outcomes:
            for error in outcome.errors:
                where = re.sub(r"(^|/)\d+(?=/|$)", r"\1*", error.split(":")[0])
                found.setdefault(f"{outcome.operation} {outcome.status} {where}", []).append(error)
        return found

    def unexpected(self) -> dict[str, list[str]]:
        """The mismatches EXPECTED_MISMATCHES does not list."""
        return {key: errors for key, errors in self.mismatches.items() if key not in EXPECTED_MISMATCHES}

    def summary(self) -> str:
        return (
            f"{len(self.covered)} operations covered ({len(self.succeeded)} with a success), "
            f"{len(self.outcomes)} responses validated, {len(self.mismatches)} mismatches (operation, status, field)"
        )

    def assert_conforms(self) -> None:
        """Every request matched an operation and every mismatch is an expected one."""
        assert self.unmatched == []
        unexpected = self.unexpected()
        assert unexpected == {}, "\n".join(
            f"{key}: {sorted(set(errors))}" for key, errors in unexpected.items()
        )


@contextlib.contextmanager
def recorded_client(
    base_url: str, training_key: str, prediction_key: str
) -> Iterator[tuple[httpx.Client, Recorder]]:
    """A raw HTTP client with both keys whose every response the returned Recorder validates."""
    recorder = Recorder()
    with httpx.Client(
        base_url=base_url,
        headers={"Training-Key": training_key, "Prediction-Key": prediction_key},
        event_hooks={"response": [recorder]},
        timeout=30,
    ) as http:
        yield http, recorder


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"
    return response


@dataclass
class Tally:
    """The validated sessions of one pytest run by name, for the coverage of their union (a session fixture in
    conftest holds it, and the terminal summary prints it)."""

    sessions: dict[str, Recorder] = field(default_factory=dict)

    def add(self, name: str, recorder: Recorder) -> None:
        self.sessions[name] = recorder
        log.warning("conformance, %s session: %s", name, recorder.summary())

    def uncovered(self) -> list[str]:
        """Routed operations no session answered with a success."""
        succeeded = set().union(*(r.succeeded for r in self.sessions.values()))
        return sorted(routed_operations() - succeeded)

    def lines(self) -> list[str]:
        recorders = list(self.sessions.values())
        covered = set().union(*(r.covered for r in recorders))
        succeeded = set().union(*(r.succeeded for r in recorders))
        mismatches = set().union(*(r.mismatches for r in recorders))
        known_missing = {entry.split()[1] for entry in KNOWN_MISSING}
        lines = [f"{name} session: {recorder.summary()}" for name, recorder in self.sessions.items()]
        lines.append(
            f"together ({', '.join(self.sessions)}): {len(covered)} operations covered, {len(succeeded)} with a "
            f"success, of {len(routed_operations())} routed ({len(known_missing)} more known missing); "
            f"{sum(len(r.outcomes) for r in recorders)} responses validated; {len(mismatches)} mismatches"
        )
        lines += [
            f"  mismatch {key}: {EXPECTED_MISMATCHES.get(key, 'UNEXPECTED')}" for key in sorted(mismatches)
        ]
        return lines


if (
    __name__ == "__main__"
):  # refresh tests/spec_subset.json from ../shared (test_the_subset_is_current says when)
    full = {name: json.loads((SPECS / name).read_text()) for name in DESCRIPTIONS}
    SPEC_SUBSET.write_text(json.dumps({name: subset(raw) for name, raw in full.items()}, indent=1) + "\n")
