"""Search filters: LangGraph's ``{"field": value}`` and ``{"field": {"$op": value}}`` forms to SQL.

A plain value matches a top-level field that equals it (JSON equality). Operators:
``$eq``/``$ne`` compare JSON values (``$ne`` also matches items without the field, as LangGraph's
in-memory store does); ``$gt``/``$gte``/``$lt``/``$lte`` take a number or a string and match fields of
the same JSON type (numbers numerically, strings by text order).

A filter's equalities also make one JSON object that every match contains (``FilterSQL.contained``),
which a GIN index answers: a search can count and read the items a filter matches without reading
the others (``sql.search_sql``). An item equal on a field contains it, so the containment drops
no match; the equalities still decide.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from durable_graph.errors import InvalidFilterError

_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = ("$eq", "$ne", *_RANGE)


def _json(value: Any, where: str) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidFilterError(f"filter {where}: value {value!r} is not JSON ({exc})") from exc


def _condition(column: str, field: str, operator: str, value: Any) -> tuple[str, list[Any]]:
    where = f"on {field!r}" + (f" with {operator}" if operator != "$eq" else "")
    if operator == "$eq":
        return f"{column} -> %s = %s::jsonb", [field, _json(value, where)]
    if operator == "$ne":
        return f"{column} -> %s IS DISTINCT FROM %s::jsonb", [field, _json(value, where)]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidFilterError(
            f"filter {where}: {operator} needs a number or a string, got {type(value).__name__} {value!r}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilterError(f"filter {where}: {operator} needs a finite number, got {value!r}")
    json_type = "string" if isinstance(value, str) else "number"
    return (
        f"(jsonb_typeof({column} -> %s) = %s AND {column} -> %s {_RANGE[operator]} %s::jsonb)",
        [field, json_type, field, json.dumps(value)],
    )


class FilterSQL(NamedTuple):
    sql: str
    params: list[Any]
    contained: str | None  # JSON of the fields its equalities name, with their values; None without


def filter_sql(column: str, filter: Any) -> FilterSQL:
    """The SQL condition of ``filter`` against the jsonb ``column`` (``TRUE`` for no filter).

    Raises ``InvalidFilterError`` naming the offending field or operator.
    """
    if not filter:
        if filter is None or isinstance(filter, dict):
            return FilterSQL("TRUE", [], None)
        raise InvalidFilterError(f"filter must be a dict such as {{'kind': 'fact'}}, got {filter!r}")
    if not isinstance(filter, dict):
        raise InvalidFilterError(f"filter must be a dict such as {{'kind': 'fact'}}, got {filter!r}")
    clauses: list[str] = []
    params: list[Any] = []
    equal: dict[str, Any] = {}
    for field, expected in filter.items():
        if not isinstance(field, str) or not field:
            raise InvalidFilterError(f"filter field names must be non-empty strings, got {field!r}")
        operators = isinstance(expected, dict) and any(str(k).startswith("$") for k in expected)
        if not operators:
            expected = {"$eq": expected}
        for operator, value in expected.items():
            if operator not in OPERATORS:
                raise InvalidFilterError(
                    f"filter on {field!r}: unsupported operator {operator!r}; "
                    f"use one of {', '.join(OPERATORS)} (or a plain value for equality)"
                )
            sql, args = _condition(column, field, operator, value)
            clauses.append(sql)
            params += args
            if operator == "$eq":
                equal[field] = value
    return FilterSQL(" AND ".join(clauses), params, json.dumps(equal) if equal else None)
