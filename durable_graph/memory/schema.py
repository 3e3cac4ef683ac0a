"""The memory store's tables, created by versioned migrations (``durable_graph.migrations``).

Two components: ``store`` (items, always) and ``store-vectors`` (embeddings, once a store with an
index opens the database). The vector size is fixed by the first index and recorded in
``dg_store_meta``; opening with another size is refused before anything is read or written.
Namespaces and keys use the "C" collation so namespace prefixes are byte-ordered ranges.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from durable_graph.errors import StoreConfigError
from durable_graph.migrations import Migration, Rows, Step

ITEMS = "dg_store_items"
VECTORS = "dg_store_vectors"
META = "dg_store_meta"
TEXT_SEARCH_CONFIG = "english"

STORE_MIGRATIONS = [
    Migration(
        1,
        f"""
CREATE TABLE {ITEMS} (
    prefix text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    ttl_minutes double precision,
    expires_at timestamptz,
    tsv tsvector GENERATED ALWAYS AS (
        jsonb_to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, value, '["string"]')
    ) STORED,
    PRIMARY KEY (prefix, key)
);
CREATE INDEX {ITEMS}_expires_idx ON {ITEMS} (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX {ITEMS}_tsv_idx ON {ITEMS} USING gin (tsv);
CREATE TABLE {META} (name text PRIMARY KEY, value jsonb NOT NULL);
""",
    ),
]


@dataclass(frozen=True)
class HNSWConfig:
    """HNSW build parameters ``m`` and ``ef_construction`` (fixed when the index is first created)
    and the search breadth ``ef_search`` (per connection). pgvector's defaults are 16, 64 and 40;
    ours build the graph with a narrower search, which makes writes cheaper, and search it wider
    to keep recall (see docs/memory.md for the measurements)."""

    m: int = 16
    ef_construction: int = 48
    ef_search: int = 200

    def __post_init__(self) -> None:
        for name in ("m", "ef_construction", "ef_search"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise StoreConfigError(f"HNSW {name} must be an integer >= 2, got {value!r}")


def vector_migrations(dims: int, hnsw: HNSWConfig) -> list[Migration]:
    # Vectors are stored unit length, so inner product ranks exactly like cosine and costs less.
    return [
        Migration(
            1,
            f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE {VECTORS} (
    prefix text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    field text NOT NULL,
    embedding vector({int(dims)}) NOT NULL,
    PRIMARY KEY (prefix, key, field),
    FOREIGN KEY (prefix, key) REFERENCES {ITEMS} (prefix, key) ON DELETE CASCADE
);
CREATE INDEX {VECTORS}_hnsw_idx ON {VECTORS} USING hnsw (embedding vector_ip_ops)
    WITH (m = {int(hnsw.m)}, ef_construction = {int(hnsw.ef_construction)});
INSERT INTO {META} (name, value) VALUES ('dims', '{int(dims)}'), ('distance', '"cosine"');
""",
        )
    ]


def stored_dims_steps() -> Generator[Step, Rows, int | None]:
    """The vector size recorded in the database (None when no index was ever created)."""
    rows = yield f"SELECT to_regclass('{META}') IS NOT NULL", None
    if not rows or not rows[0][0]:
        return None
    rows = yield f"SELECT value FROM {META} WHERE name = 'dims'", None
    return int(rows[0][0]) if rows else None


def check_dims(stored: int | None, wanted: int) -> None:
    if stored is not None and stored != wanted:
        raise StoreConfigError(
            f"this database's memory store holds {stored}-dimensional vectors, but it was opened with "
            f"dims={wanted}: open it with dims={stored} (and the embedder that made them), or use another "
            "database; nothing was changed"
        )


def drive(conn: Any, steps: Generator[Step, Rows, Any]) -> Any:
    """Run a generator of SQL steps on a sync connection and return its result."""
    rows: Rows = None
    while True:
        try:
            sql, params = steps.send(rows)
        except StopIteration as done:
            return done.value
        cur = conn.execute(sql.encode(), params)
        rows = cur.fetchall() if cur.description else None


async def adrive(conn: Any, steps: Generator[Step, Rows, Any]) -> Any:
    """Async form of ``drive``."""
    rows: Rows = None
    while True:
        try:
            sql, params = steps.send(rows)
        except StopIteration as done:
            return done.value
        cur = await conn.execute(sql.encode(), params)
        rows = await cur.fetchall() if cur.description else None
