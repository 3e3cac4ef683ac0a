"""What a store remembers of its namespaces' sizes between searches (``memory.scopes``): reused while
fresh, counted again when old, and never a cause of wrong results. On a real Postgres with pgvector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langgraph.store.base import PutOp

from durable_graph.memory import HashingEmbedder, PgVectorStore, tuning
from durable_graph.memory.scopes import MAX_REMEMBERED, ScopeSizes
from tests.pg import fresh_database

LARGE = tuning.EXACT_SCAN_MAX_VECTORS + 500


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(pg_server: str, clock: Clock) -> Iterator[PgVectorStore]:
    with fresh_database(pg_server, "scopes") as url:
        store = PgVectorStore(url, embed=HashingEmbedder(32), fields=["text"])
        store._scopes = ScopeSizes(seconds=60, clock=clock)
        try:
            yield store
        finally:
            store.close()


def put_notes(store: PgVectorStore, namespace: tuple[str, ...], first: int, count: int) -> None:
    puts = [
        PutOp(namespace, str(i), {"text": f"note {i} on topic {i % 41}"}) for i in range(first, first + count)
    ]
    for start in range(0, len(puts), 500):
        store.batch(puts[start : start + 500])


def test_an_answer_is_reused_while_fresh_and_counted_again_when_old() -> None:
    clock = Clock()
    sizes = ScopeSizes(seconds=60, clock=clock)
    assert sizes.small("a.b") is None
    sizes.remember("a.b", True)
    clock.now += 60
    assert sizes.small("a.b") is True
    clock.now += 1
    assert sizes.small("a.b") is None


def test_the_memory_is_bounded() -> None:
    sizes = ScopeSizes()
    for i in range(MAX_REMEMBERED + 1):
        sizes.remember(f"ns{i}", True)
    assert sizes.small(f"ns{MAX_REMEMBERED}") is True
    assert sizes.small("ns0") is None


def test_a_search_remembers_what_it_counted_until_it_is_old(store: PgVectorStore, clock: Clock) -> None:
    put_notes(store, ("grows",), 0, 50)
    assert store.search(("grows",), query="note 7 on topic 7", limit=1)[0].key == "7"
    assert store._scopes.small("grows") is True

    # another process fills the namespace: this store's answer is stale until it is old
    other = PgVectorStore(store.conninfo, embed=HashingEmbedder(32), fields=["text"])
    try:
        put_notes(other, ("grows",), 50, LARGE)
    finally:
        other.close()
    assert store.search(("grows",), query="note 2000 on topic 32", limit=1)[0].key == "2000"
    assert store._scopes.small("grows") is True  # reused: an exact scan, whose results are exact

    clock.now += 61
    assert store.search(("grows",), query="note 2000 on topic 32", limit=1)[0].key == "2000"
    assert store._scopes.small("grows") is False


def test_a_put_forgets_what_was_remembered_of_the_prefixes_above_it(store: PgVectorStore) -> None:
    put_notes(store, ("users", "ann"), 0, 3)
    put_notes(store, ("users", "bob"), 0, 3)
    for prefix in [(), ("users",), ("users", "ann"), ("users", "bob")]:
        store.search(prefix, query="note 1 on topic 1", limit=1)
    assert all(store._scopes.small(p) is True for p in ["", "users", "users.ann", "users.bob"])

    put_notes(store, ("users", "ann"), 3, 1)
    assert [store._scopes.small(p) for p in ["", "users", "users.ann", "users.bob"]] == [
        None,
        None,
        None,
        True,
    ]


async def test_async_searches_remember_too(store: PgVectorStore) -> None:
    put_notes(store, ("few",), 0, 20)
    found = await store.asearch(("few",), query="note 3 on topic 3", limit=2)
    assert found[0].key == "3"
    assert store._scopes.small("few") is True
    await store.aclose()


def test_a_stale_answer_never_loses_results(store: PgVectorStore) -> None:
    put_notes(store, ("big",), 0, LARGE)
    put_notes(store, ("tiny",), 0, 5)
    store._scopes.remember("tiny", False)  # as if "tiny" had been large and was emptied since
    found = store.search(("tiny",), query="note 3 on topic 3", limit=10)
    assert sorted(item.key for item in found) == ["0", "1", "2", "3", "4"]
    assert found[0].key == "3"


def test_searches_without_a_query_remember_nothing(store: PgVectorStore) -> None:
    put_notes(store, ("plain",), 0, 3)
    assert len(store.search(("plain",), limit=10)) == 3
    assert store._scopes.small("plain") is None
