"""The bases every wire model derives from: snake_case in Python, camelCase on the wire, unknown property names
ignored (as the real service binds them); property names bound case-insensitively on every model a client may send;
and the time type for times clients send."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel


class WireShape(BaseModel):
    """The names and the extra-property rule every wire model shares; derive from `WireModel` or `AnswerModel`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class WireModel(WireShape):
    """A shape a client may send (and Seer may answer with): its property names bind in any case."""

    @model_validator(mode="before")
    @classmethod
    def _any_case(cls, data: Any) -> Any:
        """Renames `Url`, `URL`, `tagids` ... to the alias they match ignoring case (customvision.ai's own curl
        example sends `{"Url": ...}`); a key that is already exact wins over a differently cased one."""
        if not isinstance(data, dict):
            return data
        if _wire_names(cls).issuperset(data):  # nothing to rename (every answer Seer builds): checked in C
            return data
        names = _names_by_lower_case(cls)
        renamed = {}
        for key, value in data.items():
            exact = names.get(key.lower(), key) if isinstance(key, str) else key
            if exact != key and exact in data:
                continue
            renamed[exact] = value
        return renamed


class AnswerModel(WireShape):
    """A shape Seer only answers with, never reads from a request (tests/unit/test_wire.py checks every route's
    body): it has no renaming validator, whose call alone cost more than building the model. A detection answer
    of 200 boxes is 401 of them."""


class OmitsUnset(WireShape):
    """A mixin for a wire model (beside `WireModel` or `AnswerModel`) with properties the spec declares
    non-nullable (`x-nullable: false`) that can have no value (an unpublished iteration's publish name, a query
    token's last continuation): the fields named in `omitted_when_unset` are left out of the answer while None
    rather than sent as null, which a strict client rejects. The schema stays the model's own (the serializer
    declares no return type)."""

    omitted_when_unset: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        if isinstance(data, dict):
            for name in self.omitted_when_unset:
                for key in (name, type(self).model_fields[name].alias):
                    if key in data and data[key] is None:
                        del data[key]
        return data


@cache
def _names_by_lower_case(model: type[BaseModel]) -> dict[str, str]:
    """Each field's wire name (its alias) by its lower-cased alias and Python name."""
    names = {}
    for name, field in model.model_fields.items():
        wire = field.alias or name
        names[name.lower()] = name
        names[wire.lower()] = wire
    return names


@cache
def _wire_names(model: type[BaseModel]) -> frozenset[str]:
    """The names `_names_by_lower_case` renames to: each field's alias and Python name as written."""
    return frozenset(_names_by_lower_case(model).values())


def _as_utc(moment: datetime) -> datetime:
    """A time without a zone is UTC (as Custom Vision reads it); any other is converted to UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
