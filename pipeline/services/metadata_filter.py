"""GetImages' and GetImageCount's `$filter` over image metadata, as the spec describes it: `key eq 'value'`,
`key ne 'value'`, joined by `and` / `or` (`and` binds tighter, as in OData) and grouped by parentheses. A small
recursive-descent parser turns the text into a predicate; nothing is ever evaluated as code.

Keys are bare words (no spaces, quotes or parentheses) compared case-sensitively, as metadata is stored; values are
single-quoted, `''` standing for a quote. An image without the key is unequal to every value (OData's null)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipeline.core.errors import CustomVisionError, bad_request
from pipeline.core.limits import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH

Predicate = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|'(?P<text>(?:[^']|'')*)'|(?P<word>[^\s()']+))")
_TRAILING_SPACE = re.compile(r"\s*\Z")


@dataclass(frozen=True)
class _Token:
    kind: str  # "paren", "text" or "word"
    value: str
    at: int  # character offset, for the error message


def _invalid(why: str) -> CustomVisionError:
    return bad_request("BadRequestInvalid", f"$filter is not a valid metadata filter: {why}.")


def _tokens(text: str) -> list[_Token]:
    tokens, at = [], 0
    while not _TRAILING_SPACE.match(text, at):
        found = _TOKEN.match(text, at)
        if found is None:
            raise _invalid(f"unterminated quoted value at character {at + 1}")
        kind = found.lastgroup or "word"
        value = found.group(kind)
        tokens.append(_Token(kind, value.replace("''", "'") if kind == "text" else value, found.start(kind)))
        at = found.end()
    return tokens


def _everything(metadata: Mapping[str, str]) -> bool:
    return True


class _Parser:
    """expression := term ('or' term)* ; term := factor ('and' factor)* ;
    factor := '(' expression ')' | key ('eq' | 'ne') 'value'"""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.next = 0

    def parse(self) -> Predicate:
        predicate = self._expression(0)
        if self.next < len(self.tokens):
            raise _invalid(f"unexpected {self._describe()}")
        return predicate

    def _peek(self) -> _Token | None:
        return self.tokens[self.next] if self.next < len(self.tokens) else None

    def _describe(self) -> str:
        token = self._peek()
        return "end of the expression" if token is None else f"{token.value!r} at character {token.at + 1}"

    def _take(self, kind: str, *words: str) -> _Token | None:
        """The next token if it is of `kind` (and, for words, one of `words` ignoring case), consumed."""
        token = self._peek()
        if token is None or token.kind != kind or (words and token.value.lower() not in words):
            return None
        self.next += 1
        return token

    def _expression(self, depth: int) -> Predicate:
        terms = [self._term(depth)]
        while self._take("word", "or"):
            terms.append(self._term(depth))
        return terms[0] if len(terms) == 1 else lambda metadata: any(term(metadata) for term in terms)

    def _term(self, depth: int) -> Predicate:
        factors = [self._factor(depth)]
        while self._take("word", "and"):
            factors.append(self._factor(depth))
        return factors[0] if len(factors) == 1 else lambda metadata: all(f(metadata) for f in factors)

    def _factor(self, depth: int) -> Predicate:
        if self._take("paren", "("):
            if depth == MAX_FILTER_DEPTH:
                raise _invalid(f"parentheses nest deeper than {MAX_FILTER_DEPTH}")
            inner = self._expression(depth + 1)
            if not self._take("paren", ")"):
                raise _invalid(f"expected ')' instead of {self._describe()}")
            return inner
        key = self._take("word")
        if key is None:
            raise _invalid(f"expected a metadata key instead of {self._describe()}")
        operator = self._take("word", "eq", "ne")
        if operator is None:
            raise _invalid(f"expected 'eq' or 'ne' instead of {self._describe()}")
        value = self._take("text")
        if value is None:
            raise _invalid(f"expected a quoted value instead of {self._describe()}")
        name, wanted = key.value, value.value
        if operator.value.lower() == "eq":
            return lambda metadata: metadata.get(name) == wanted
        return lambda metadata: metadata.get(name) != wanted


def parse_metadata_filter(text: str | None) -> Predicate:
    """The predicate `text` describes; every image passes an empty filter."""
    if not text or not text.strip():
        return _everything
    if len(text) > MAX_FILTER_LENGTH:
        raise _invalid(f"it is longer than {MAX_FILTER_LENGTH} characters")
    return _Parser(_tokens(text)).parse()
