"""Versioned schema migrations for Postgres, safe to run from many processes at once.

Each component (the checkpointer, the memory store) owns an ordered list of migrations. Applying
them takes a transaction-scoped advisory lock, so concurrent callers wait for the first one and
then find nothing left to do. A database migrated by a newer durable-graph is refused with a clear
error instead of being written with an old schema.

The logic is written once as a generator of ``(sql, params)`` steps that receives each step's rows;
``run_steps`` and ``arun_steps`` drive such a generator (here and in the memory store's schema
checks) with a sync or an async connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from durable_graph.errors import SchemaVersionError

Step = tuple[str, tuple[Any, ...] | None]
T = TypeVar("T")
Rows = list[tuple[Any, ...]] | None


@dataclass(frozen=True)
class Migration:
    version: int
    sql: str


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS durable_graph_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)"""
_CURRENT = "SELECT coalesce(max(version), 0) FROM durable_graph_migrations WHERE component = %s"
_RECORD = "INSERT INTO durable_graph_migrations (component, version) VALUES (%s, %s)"


def _lock_key(component: str) -> int:
    digest = hashlib.blake2b(f"durable_graph:{component}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _steps(component: str, migrations: Sequence[Migration]) -> Generator[Step, Rows, None]:
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"migrations of {component!r} must have increasing, unique versions")
    yield "SELECT pg_advisory_xact_lock(%s)", (_lock_key(component),)
    yield _CREATE_TABLE, None
    rows = yield _CURRENT, (component,)
    current = int(rows[0][0]) if rows else 0
    newest = versions[-1] if versions else 0
    if current > newest:
        raise SchemaVersionError(
            f"the database holds {component} schema version {current}, but this durable-graph "
            f"knows versions up to {newest}: upgrade durable-graph instead of writing with an old schema"
        )
    for migration in migrations:
        if migration.version > current:
            yield migration.sql, None
            yield _RECORD, (component, migration.version)


def run_steps(conn: psycopg.Connection[Any], steps: Generator[Step, Rows, T]) -> T:
    """Run a generator of ``(sql, params)`` steps on a sync connection and return its result."""
    rows: Rows = None
    while True:
        try:
            sql, params = steps.send(rows)
        except StopIteration as done:
            return done.value
        cur = conn.execute(sql.encode(), params)
        rows = cur.fetchall() if cur.description else None


async def arun_steps(conn: psycopg.AsyncConnection[Any], steps: Generator[Step, Rows, T]) -> T:
    """Async form of ``run_steps``."""
    rows: Rows = None
    while True:
        try:
            sql, params = steps.send(rows)
        except StopIteration as done:
            return done.value
        cur = await conn.execute(sql.encode(), params)
        rows = await cur.fetchall() if cur.description else None


def migrate(conn: psycopg.Connection[Any], component: str, migrations: Sequence[Migration]) -> None:
    """Apply the missing migrations of ``component`` in one transaction."""
    with conn.transaction():
        run_steps(conn, _steps(component, migrations))


async def amigrate(
    conn: psycopg.AsyncConnection[Any], component: str, migrations: Sequence[Migration]
) -> None:
    """Async form of ``migrate``."""
    async with conn.transaction():
        await arun_steps(conn, _steps(component, migrations))
