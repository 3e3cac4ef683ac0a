"""``open_store(url)``: the memory store behind a backend URL, for ``with`` and ``async with``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.store.base import TTLConfig

from durable_graph.errors import InvalidURLError
from durable_graph.lifecycle import Opener
from durable_graph.memory.config import resolve_index
from durable_graph.memory.schema import HNSWConfig
from durable_graph.urls import parse_url


def open_store(
    url: str | None = None,
    *,
    embed: Any = None,
    dims: int | None = None,
    fields: Sequence[str] | None = None,
    hybrid: bool = False,
    ttl: TTLConfig | None = None,
    hnsw: HNSWConfig | None = None,
    max_pool_size: int = 10,
) -> Opener:
    """Open the long-term memory store behind ``url`` (default ``$DURABLE_GRAPH_URL``, else
    ``embedded://``): a ``PgVectorStore`` for ``postgresql://`` and ``embedded://``, LangGraph's
    ``InMemoryStore`` for ``memory://``.

    ``with open_store(url) as store`` and ``async with open_store(url) as store`` both yield a
    ``BaseStore`` for ``graph.compile(store=store)``. ``embed`` is None (the offline hashing
    embedder), "minilm", a LangChain ``Embeddings``, a function of a list of texts, or False (no
    vector search); ``dims`` is its vector size; ``fields`` the JSON paths to embed (default: the
    whole value). Bad URLs and settings raise at once.
    """
    parsed = parse_url(url)
    resolve_index(embed, dims, fields)  # fail now, not on __enter__
    if parsed.kind == "sqlite":
        raise InvalidURLError(
            f"{parsed.url!r}: the memory store needs Postgres (postgresql:// or embedded://) or memory://; "
            "SQLite can hold checkpoints only"
        )
    if parsed.kind == "memory":
        from durable_graph.memory.inmemory import MemoryStore

        if ttl:
            raise InvalidURLError("memory:// has no TTL support: use postgresql:// or embedded:// for ttl=")
        return Opener(lambda: MemoryStore(embed=embed, dims=dims, fields=fields))

    from durable_graph.memory.store import PgVectorStore

    def build() -> PgVectorStore:
        return PgVectorStore(
            parsed.postgres_conninfo(),
            embed=embed,
            dims=dims,
            fields=fields,
            hybrid=hybrid,
            ttl=ttl,
            hnsw=hnsw,
            max_size=max_pool_size,
        )

    return Opener(build)
