"""``open_store(url)``: the backend swaps by URL, with ``with`` and ``async with`` alike."""

from __future__ import annotations

import pytest
from langgraph.store.memory import InMemoryStore

from durable_graph.errors import InvalidURLError, StoreConfigError
from durable_graph.memory import PgVectorStore, open_store
from durable_graph.memory.inmemory import MemoryStore
from tests.test_store_support import TOPICS, keyword_embed


def test_postgres_url_gives_a_pgvector_store(pg_url: str) -> None:
    with open_store(pg_url, embed=keyword_embed, dims=len(TOPICS), fields=["text"]) as store:
        assert isinstance(store, PgVectorStore)
        store.put(("factory",), "a", {"text": "tea"})
        assert store.search(("factory",), query="tea")[0].key == "a"
    assert store._pool is None  # closed on exit


async def test_postgres_url_async_with(pg_url: str) -> None:
    async with open_store(pg_url, embed=keyword_embed, dims=len(TOPICS), fields=["text"]) as store:
        await store.aput(("factory-async",), "a", {"text": "coffee"})
        assert (await store.asearch(("factory-async",), query="coffee"))[0].key == "a"
    assert store._apool is None


async def test_memory_url_gives_langgraph_in_memory_store() -> None:
    with open_store("memory://", embed=keyword_embed, dims=len(TOPICS), fields=["text"]) as store:
        assert isinstance(store, InMemoryStore) and isinstance(store, MemoryStore)
        store.put(("m",), "a", {"text": "tea"})
        store.put(("m",), "b", {"text": "rust"})
        assert [r.key for r in store.search(("m",), query="rust")][0] == "b"
        scoped = store.scoped(("m",))
        assert scoped.get((), "a").value == {"text": "tea"}  # type: ignore[union-attr]
    async with open_store("memory://") as store:  # default: the offline hashing embedder
        await store.aput(("m",), "a", {"text": "the cat sat on the mat"})
        await store.aput(("m",), "b", {"text": "quarterly revenue grew"})
        assert (await store.asearch(("m",), query="a cat on a mat"))[0].key == "a"


def test_bad_urls_and_settings_fail_at_once() -> None:
    with pytest.raises(InvalidURLError, match="needs Postgres .* or memory://"):
        open_store("sqlite:///memory.db")
    with pytest.raises(InvalidURLError, match="unknown backend"):
        open_store("mysql://x/y")
    with pytest.raises(InvalidURLError, match="no TTL"):
        open_store("memory://", ttl={"default_ttl": 5})
    with pytest.raises(StoreConfigError, match="dims is required"):
        open_store("memory://", embed=keyword_embed)
    with pytest.raises(ValueError, match="unknown embedder"):
        open_store("memory://", embed="word2vec")
