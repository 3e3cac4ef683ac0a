"""The memory store's tables, created by versioned migrations (``durable_graph.migrations``).

Two components: ``store`` (items, always) and ``store-vectors`` (embeddings, once a store with an
index opens the database). The vector size is fixed by the first index and recorded in
``dg_store_meta``; opening with another size is refused before anything is read or written.
Namespaces and keys use the "C" collation so namespace prefixes are byte-ordered ranges.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace

from durable_graph.errors import StoreConfigError
from durable_graph.memory import tuning
from durable_graph.migrations import Migration, Rows, Step

ITEMS = "dg_store_items"
VECTORS = "dg_store_vectors"
META = "dg_store_meta"
INDEX = f"{VECTORS}_hnsw_idx"
TEXT_SEARCH_CONFIG = "english"
# ["a", "a.b"] for an item of namespace ("a", "b")
PREFIXES = "dg_store_prefixes"

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
    # A search's namespace prefix and its filter's equalities, answered together by one GIN index
    # (``sql.search_sql``): the namespace prefixes each item falls under, beside its value.
    Migration(
        2,
        f"""
CREATE FUNCTION {PREFIXES}(namespace text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    labels text[] := string_to_array(namespace, '.');
    prefixes text[] := '{{}}';
BEGIN
    FOR n IN 1 .. coalesce(cardinality(labels), 0) LOOP
        prefixes := prefixes || array_to_string(labels[1:n], '.');
    END LOOP;
    RETURN prefixes;
END
$$;
ALTER TABLE {ITEMS} ADD COLUMN prefixes text[] GENERATED ALWAYS AS ({PREFIXES}(prefix)) STORED;
CREATE INDEX {ITEMS}_filter_idx ON {ITEMS} USING gin (prefixes, value jsonb_path_ops);
""",
    ),
]


@dataclass(frozen=True)
class HNSWConfig:
    """HNSW build parameters ``m`` and ``ef_construction`` (fixed when the index is first created)
    and the search breadth ``ef_search`` (per connection). pgvector's defaults are 16, 64 and 40;
    ours (``tuning``) build a graph with fewer links, which makes writes cheaper, search it
    wider, and re-rank twice the wanted candidates by their full vectors (docs/memory.md).
    ``ef_construction`` None: 96 for vectors of up to 128 dimensions, 64 above (at least 2m)."""

    m: int = tuning.HNSW_M
    ef_construction: int | None = None
    ef_search: int = tuning.HNSW_EF_SEARCH

    def __post_init__(self) -> None:
        # pgvector's bounds
        for name, low, high in (("m", 2, 100), ("ef_construction", 4, 1000), ("ef_search", 1, 1000)):
            value = getattr(self, name)
            if value is None and name == "ef_construction":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise StoreConfigError(f"HNSW {name} must be an integer from {low} to {high}, got {value!r}")
        if self.ef_construction is not None and self.ef_construction < 2 * self.m:
            raise StoreConfigError(
                f"HNSW ef_construction must be at least 2 * m, got m={self.m}, "
                f"ef_construction={self.ef_construction}"
            )

    def ef_construction_for(self, dims: int) -> int:
        """``ef_construction``, or when it is None the one chosen for vectors of ``dims``."""
        if self.ef_construction is not None:
            return self.ef_construction
        return tuning.default_ef_construction(dims, self.m)

    def for_dims(self, dims: int) -> HNSWConfig:
        """This config with ``ef_construction`` chosen for vectors of ``dims`` when it is None."""
        return replace(self, ef_construction=self.ef_construction_for(dims))


def vector_migrations(dims: int, hnsw: HNSWConfig) -> list[Migration]:
    # Vectors are stored unit length, so inner product ranks exactly like cosine and costs less.
    # The table keeps them at full precision; the HNSW index holds them at half precision
    # (``halfvec``), which halves its size and makes inserts and searches cheaper, while scores are
    # computed from the full vectors. Version 1 built the index on the full vectors.
    ef_construction = hnsw.ef_construction_for(dims)
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
INSERT INTO {META} (name, value) VALUES ('dims', '{int(dims)}'), ('distance', '"cosine"');
""",
        ),
        Migration(
            2,
            f"""
DROP INDEX IF EXISTS {INDEX};
CREATE INDEX {INDEX} ON {VECTORS} USING hnsw ({index_expression(dims)} halfvec_ip_ops)
    WITH (m = {int(hnsw.m)}, ef_construction = {int(ef_construction)});
""",
        ),
    ]


def index_expression(dims: int, column: str = "embedding") -> str:
    """What the HNSW index holds; a search must order by exactly this to use the index."""
    return f"({column}::halfvec({int(dims)}))"


def stored_dims_steps() -> Generator[Step, Rows, int | None]:
    """The vector size recorded in the database (None when no index was ever created)."""
    rows = yield f"SELECT to_regclass('{META}') IS NOT NULL", None
    if not rows or not rows[0][0]:
        return None
    rows = yield f"SELECT value FROM {META} WHERE name = 'dims'", None
    return int(rows[0][0]) if rows else None


def built_index_steps() -> Generator[Step, Rows, HNSWConfig | None]:
    """The HNSW index as it was built (its ``m`` and ``ef_construction``, pgvector's defaults where
    unset) with the ``ef_search`` it needs (``tuning.default_ef_search``); None when there is none."""
    rows = yield f"SELECT reloptions FROM pg_class WHERE oid = to_regclass('{INDEX}')", None
    if not rows:
        return None
    options = dict(option.split("=", 1) for option in rows[0][0] or [])
    m, ef_construction = int(options.get("m", 16)), int(options.get("ef_construction", 64))
    return HNSWConfig(m, ef_construction, tuning.default_ef_search(m, ef_construction))


def check_dims(stored: int | None, wanted: int) -> None:
    if stored is not None and stored != wanted:
        raise StoreConfigError(
            f"this database's memory store holds {stored}-dimensional vectors, but it was opened with "
            f"dims={wanted}: open it with dims={stored} (and the embedder that made them), or use another "
            "database; nothing was changed"
        )
