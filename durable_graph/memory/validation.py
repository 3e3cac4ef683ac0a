"""Checks of store operations, done for a whole batch before anything runs, so a bad op changes
nothing. Every error names what was wrong."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from langgraph.store.base import GetOp, ListNamespacesOp, MatchCondition, Op, PutOp, SearchOp

from durable_graph.memory import namespaces as ns
from durable_graph.memory.filters import filter_sql


def count(value: Any, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def json_value(op: PutOp) -> str:
    where = f"item {op.key!r} in {tuple(op.namespace)!r}"
    if not isinstance(op.value, Mapping):
        raise ValueError(f"{where}: value must be a dict (or None to delete), got {type(op.value).__name__}")
    try:
        text = json.dumps(dict(op.value), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: value is not JSON-serialisable ({exc})") from exc
    if "\\u0000" in text:
        raise ValueError(f"{where}: value contains a NUL character, which Postgres cannot store")
    return text


def ttl_minutes(op: PutOp) -> float | None:
    if op.ttl is None:
        return None
    if isinstance(op.ttl, bool) or not isinstance(op.ttl, int | float) or not op.ttl > 0:
        raise ValueError(f"item {op.key!r}: ttl must be a positive number of minutes or None, got {op.ttl!r}")
    if not math.isfinite(op.ttl):
        raise ValueError(f"item {op.key!r}: ttl must be finite, got {op.ttl!r}")
    return float(op.ttl)


def check_index(op: PutOp) -> None:
    if op.index is None or op.index is False:
        return
    if not isinstance(op.index, list | tuple) or any(not isinstance(f, str) or not f for f in op.index):
        raise ValueError(
            f"item {op.key!r}: index must be None, False or a list of field paths, got {op.index!r}"
        )


def checked_conditions(conditions: Any) -> tuple[MatchCondition, ...]:
    checked = []
    for condition in conditions or ():
        if not isinstance(condition, MatchCondition) or condition.match_type not in ("prefix", "suffix"):
            raise ValueError(f"match condition must be a prefix or suffix MatchCondition, got {condition!r}")
        checked.append(MatchCondition(condition.match_type, ns.validate_labels(condition.path, what="path")))
    return tuple(checked)


def validate(op: Op) -> None:
    """Raise a clear error if ``op`` is malformed; nothing is executed for a batch holding one."""
    if isinstance(op, GetOp):
        ns.validate_labels(op.namespace)
        ns.validate_key(op.key)
    elif isinstance(op, PutOp):
        ns.validate_item_namespace(op.namespace)
        ns.validate_key(op.key)
        if op.value is not None:
            json_value(op)
            ttl_minutes(op)
            check_index(op)
    elif isinstance(op, SearchOp):
        ns.validate_labels(op.namespace_prefix, what="namespace prefix")
        filter_sql("i.value", op.filter)
        count(op.limit, "search limit")
        count(op.offset, "search offset")
        if op.query is not None and not isinstance(op.query, str):
            raise ValueError(f"search query must be a string, got {type(op.query).__name__}")
    elif isinstance(op, ListNamespacesOp):
        checked_conditions(op.match_conditions)
        if op.max_depth is not None:
            count(op.max_depth, "max_depth", minimum=1)
        count(op.limit, "list_namespaces limit")
        count(op.offset, "list_namespaces offset")
    else:
        raise ValueError(
            f"unknown store operation {type(op).__name__}: "
            "expected GetOp, PutOp, SearchOp or ListNamespacesOp"
        )
