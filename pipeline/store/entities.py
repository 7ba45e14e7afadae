"""Mapping between pydantic records and table entities, and ETag-guarded read-modify-write."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)

_SCALARS = (str, int, float, bool, datetime, type(None))
_BACKOFF_SECONDS = 0.02  # the pause after a lost race is up to this times the number of races lost
# A string property holds at most 32K UTF-16 code units (64 KiB) and an entity at most 1 MiB, so a long JSON value
# (300 regions, a classifier's 500 predicted tags) is split across `name`, `name__1`, `name__2`, ... ASCII-only
# JSON makes characters and code units the same; 16 parts of 30,000 stay well inside the entity's 1 MiB.
_PART_CHARS = 30_000
MAX_PARTS = 16


def part_names(name: str) -> list[str]:
    """Every property a JSON value called `name` may occupy, for queries that `select` it."""
    return [name, *(f"{name}__{i}" for i in range(1, MAX_PARTS))]


def _split(name: str, text: str) -> dict[str, str]:
    parts = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [text]
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{name} is {len(text)} characters of JSON; a row holds at most {MAX_PARTS} parts")
    return dict(zip(part_names(name), parts, strict=False))


def joined(entity: dict[str, Any], name: str) -> str | None:
    """The text of property `name` with its continuation parts (rows written as one property have none)."""
    if name not in entity:
        return None
    text = [entity[name]]
    for part in part_names(name)[1:]:
        if part not in entity:
            break
        text.append(entity[part])
    return "".join(text)


def to_entity(record: BaseModel, partition_key: str, row_key: str) -> dict[str, Any]:
    """Scalars become properties; lists, dicts and nested models become compact JSON strings (Tables has no
    arrays), split across numbered properties when longer than one property holds."""
    entity: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": row_key}
    for name, value in record.model_dump(mode="python").items():
        if value is None:
            continue
        if isinstance(value, _SCALARS):
            entity[name] = value
        else:
            entity.update(_split(name, json.dumps(value, default=str, separators=(",", ":"))))
    return entity


def from_entity(model: type[R], entity: dict[str, Any]) -> R:
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in entity:
            continue
        value = entity[name]
        if isinstance(value, str) and field.annotation not in (str, str | None) and value[:1] in "[{":
            value = json.loads(joined(entity, name) or "")
        data[name] = value
    return model.model_validate(data)


# Characters Table storage refuses in keys: no record can have one, so a lookup by such a key (an id a client sent,
# say "/") finds nothing, where asking storage would fail with a 400 of its own.
_NOT_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def get_record(table: TableClient, model: type[R], partition_key: str, row_key: str) -> R | None:
    if _NOT_IN_KEYS.search(partition_key) or _NOT_IN_KEYS.search(row_key):
        return None
    try:
        return from_entity(model, table.get_entity(partition_key, row_key))
    except ResourceNotFoundError:
        return None


def query_records(
    table: TableClient,
    model: type[R],
    partition_key: str,
    select: list[str] | None = None,
    row_filter: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> Iterable[R]:
    """The partition's records; `row_filter` (an OData clause, with its `parameters`) narrows them."""
    query = f"PartitionKey eq @pk and {row_filter}" if row_filter else "PartitionKey eq @pk"
    entities = table.query_entities(
        query, parameters={"pk": partition_key, **(parameters or {})}, select=select
    )
    return (from_entity(model, e) for e in entities)


def property_values(table: TableClient, partition_key: str, name: str) -> set[Any]:
    """The values of property `name` in the partition's rows that have it: one query that reads nothing else."""
    rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition_key}, select=[name])
    return {row[name] for row in rows if row.get(name) is not None}


def unchanged_since(entity: Any) -> dict[str, Any]:
    """A transaction operation's options that replace `entity` only if nobody wrote it since it was read."""
    return {
        "mode": UpdateMode.REPLACE,
        "etag": entity.metadata["etag"],
        "match_condition": MatchConditions.IfNotModified,
    }


def replace_if_unchanged(table: TableClient, entity: dict[str, Any], etag: str) -> bool:
    """Replace the entity only if it still has `etag`: False when someone changed or deleted it meanwhile (a
    claim taken over by another writer, for instance)."""
    try:
        table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
        return True
    except (ResourceModifiedError, ResourceNotFoundError):
        return False


def delete_if_unchanged(table: TableClient, partition_key: str, row_key: str, etag: str) -> bool:
    """Delete the entity only if it still has `etag`: False when someone changed or deleted it meanwhile."""
    try:
        table.delete_entity(partition_key, row_key, etag=etag, match_condition=MatchConditions.IfNotModified)
        return True
    except (ResourceModifiedError, ResourceNotFoundError):
        return False


def update_record(
    table: TableClient,
    model: type[R],
    partition_key: str,
    row_key: str,
    mutate: Callable[[R], R | None],
    attempts: int = 32,
) -> R | None:
    """Read, apply `mutate`, write back only if nobody wrote in between (ETag); retry on a lost race, after a
    random pause that grows with each loss, so writers that collided spread out instead of colliding again.

    Returns the stored record, or None when the entity does not exist. `mutate` returning None means no write.
    """
    for attempt in range(attempts):
        try:
            entity = table.get_entity(partition_key, row_key)
        except ResourceNotFoundError:
            return None
        current = from_entity(model, entity)
        updated = mutate(current)
        if updated is None:
            return current
        try:
            table.update_entity(
                to_entity(updated, partition_key, row_key),
                mode=UpdateMode.REPLACE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return updated
        except ResourceModifiedError:
            time.sleep(random.uniform(0, _BACKOFF_SECONDS * (attempt + 1)))
            continue
        except ResourceNotFoundError:
            return None
    raise RuntimeError(f"could not update {partition_key}/{row_key}: too many concurrent writers")
