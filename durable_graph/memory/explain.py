"""What a search does inside Postgres: its executed plan, and which way it found the vectors."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

import psycopg
import psycopg.sql
from langgraph.store.base import SearchOp

from durable_graph.errors import StoreConfigError
from durable_graph.memory import schema
from durable_graph.memory.core import to_vectors
from durable_graph.memory.sql import search_sql, strip_mode

INDEX_NAME = schema.INDEX


def explain_search(
    store: Any,
    namespace_prefix: tuple[str, ...],
    *,
    query: str,
    filter: dict[str, Any] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> str:
    """The executed plan (``EXPLAIN ANALYZE``) of ``store.search(namespace_prefix, query=..., ...)``,
    run on one of the store's own connections (its settings) and rolled back (no TTL is refreshed).

    A search the store runs prepared is prepared here too, so the plan shown is the generic plan it
    runs (``tuning.session_settings``), not one made for these parameter values; a hybrid search
    is planned for its values, here as in the store (``sql.Statement``)."""
    index = store.settings.index
    if index is None:
        raise StoreConfigError("explain_search needs a store with an index (embed=False has none)")
    op = SearchOp(tuple(namespace_prefix), filter, limit, offset, query, refresh_ttl=False)
    raw = [index.embeddings.embed_query(strip_mode(query))]
    vector = to_vectors(raw, 1, index.dims, "query")[0]
    sql, params, plan_each_run = search_sql(op, store.settings, vector)
    explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
    with store._sync_pool().connection() as conn, conn.transaction(force_rollback=True):
        if plan_each_run:
            rows = psycopg.ClientCursor(conn).execute((explain + sql).encode(), params).fetchall()
        else:
            rows = _explain_prepared(conn, explain, sql, params)
    return "\n".join(row[0] for row in rows)


def _explain_prepared(conn: psycopg.Connection[Any], explain: str, sql: str, params: list[Any]) -> list[Any]:
    """``explain`` of ``sql`` as a prepared statement's ``EXECUTE``, under the connection's plan mode."""
    name = f"dg_explained_search_{uuid.uuid4().hex}"
    conn.execute(f"PREPARE {name} AS {_numbered(sql)}".encode())
    row = conn.execute(
        "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s", [name]
    ).fetchone()
    assert row is not None
    arguments = ", ".join(
        f"{psycopg.sql.Literal(value).as_string(conn)}::{type_name}"
        for value, type_name in zip(params, row[0], strict=True)
    )
    rows = conn.execute(f"{explain}EXECUTE {name}({arguments})".encode()).fetchall()
    # A prepared statement outlives the transaction. (A failed EXPLAIN leaves it behind, under a
    # name nothing else uses.)
    conn.execute(f"DEALLOCATE {name}".encode())
    return rows


def _numbered(sql: str) -> str:
    """``sql`` with psycopg's placeholders (``%s``, ``%b``) as Postgres' ``$1``, ``$2``, ..."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) == "%%":
            return "%"
        count += 1
        return f"${count}"

    return re.sub(r"%[sb%]", number, sql)


def vector_path(plan: str) -> Literal["index", "exact"]:
    """``"index"`` when the search's vectors came from the HNSW index, ``"exact"`` when only the
    exact scan ran (a small namespace, or a filter the index walk could not fill the page for)."""
    index_lines = [line for line in plan.splitlines() if INDEX_NAME in line]
    if not index_lines:
        raise ValueError(f"the plan does not mention {INDEX_NAME}: it cannot serve this search\n{plan}")
    ran = any("never executed" not in line for line in index_lines)
    exact_ran = _exact_scan_ran(plan)
    return "exact" if exact_ran or not ran else "index"


def _exact_scan_ran(plan: str) -> bool:
    """Whether the exact scan's rows are the ones the search ranked (it found any)."""
    found = re.search(r"CTE Scan on exact_hits \(actual rows=([\d.]+)", plan)
    if found is None:
        raise ValueError(f"the plan has no exact_hits step\n{plan}")
    return float(found.group(1)) > 0
