"""Two checks the Bicep compiler makes and pycep does not: every name an expression uses is declared, and every
property a resource sets is one its type takes.

pycep's JSON renders identifiers and string literals alike, so names are read from its parse tree instead (the lark
tree, where an identifier is a STRING token and a literal a QUOTED_INTERPOLATION). Property names are checked against
BICEP_PROPERTIES (tests/bicep_properties.json): a small hand-kept list per resource type and API version of the
properties this project sets, taken from the Azure resource reference. A shape there is an object of allowed keys
(each with the shape of its value), `null` for a value not checked further (a scalar, or an expression), `"*"` for an
object with free-form keys (tags, metadata, userAssignedIdentities), or a one-item list for an array of that shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lark import Token, Tree
from pycep import BicepParser

BICEP_PROPERTIES = Path(__file__).with_name("bicep_properties.json")

DECLARATIONS = {"param", "var", "output", "resource", "module", "custom_type", "custom_func"}
LOOPS = {"loop_array", "loop_array_index", "loop_object"}
# Keys every resource declaration may set besides its type's own (Bicep's, not the resource provider's).
BICEP_KEYWORDS = {"name", "parent", "scope", "dependsOn"}
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_NAME_IN_EXPRESSION = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?!\s*\()")
_LITERALS = {"true", "false", "null"}


def _tokens(tree: Tree, kind: str) -> Iterator[Token]:
    return (child for child in tree.children if isinstance(child, Token) and child.type == kind)


def _member_position(text: str, token: Token) -> bool:
    """A name right after `.` (or `::`, `.?`) is a property or nested resource, not a symbol."""
    before = text[: token.start_pos].rstrip()
    return before.endswith((".", "::", ".?"))


def _names_in_interpolations(literal: str) -> Iterator[str]:
    for expression in _INTERPOLATION.findall(literal):
        for name in _NAME_IN_EXPRESSION.findall(_QUOTED.sub("''", expression)):
            if name not in _LITERALS:
                yield name


def undeclared_symbols(text: str) -> list[str]:
    """Names used in `text` (one Bicep file) that it does not declare as a parameter, variable, output, resource,
    module or loop variable, in the order they are used."""
    tree = BicepParser().lark_parser.parse(text)
    declared: set[str] = set()
    used: list[str] = []
    for node in tree.iter_subtrees():
        if node.data in DECLARATIONS or node.data in LOOPS or node.data == "child_resource":
            declared.update(token.value for token in _tokens(node, "STRING"))
    skipped = {
        id(t)
        for node in tree.iter_subtrees()
        if node.data in ("key", "data_type")
        for t in node.iter_subtrees()
    }
    for node in tree.iter_subtrees_topdown():
        if id(node) in skipped and node.data != "key":
            continue
        for token in _tokens(node, "QUOTED_INTERPOLATION"):
            used.extend(_names_in_interpolations(token.value))
        if node.data == "string" and id(node) not in skipped:
            for token in _tokens(node, "STRING"):
                if not _member_position(text, token):
                    used.append(token.value)
    return [name for name in dict.fromkeys(used) if name not in declared]


def load_properties() -> dict[str, Any]:
    return json.loads(BICEP_PROPERTIES.read_text())


def unknown_properties(
    symbol: str,
    type_and_version: str,
    body: dict[str, Any],
    shapes: dict[str, Any],
    resolve: Callable[[Any], Any],
) -> list[str]:
    """Paths (`symbol.properties.x`) of the keys `body` sets that its type's shape does not allow. Values that are
    expressions are followed through `resolve` (variables, parameters); what stays unresolved is not checked."""
    shape = shapes.get(type_and_version)
    if shape is None:
        return [f"{symbol}: {type_and_version} is not in {BICEP_PROPERTIES.name}"]
    allowed = {**{key: None for key in BICEP_KEYWORDS}, **shape}
    return list(_walk(symbol, body, allowed, resolve))


def _walk(path: str, value: Any, shape: Any, resolve: Callable[[Any], Any]) -> Iterator[str]:
    if shape is None or shape == "*":
        return
    if not isinstance(value, dict | list):
        value = resolve(value)
    if isinstance(shape, list):
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _walk(f"{path}[{index}]", item, shape[0], resolve)
        return
    if isinstance(value, dict) and not ({"operator", "function", "loop_type"} & value.keys()):
        for key, item in value.items():
            if key.startswith("__"):
                continue  # pycep's line numbers
            if key not in shape:
                yield f"{path}.{key}"
            else:
                yield from _walk(f"{path}.{key}", item, shape[key], resolve)
