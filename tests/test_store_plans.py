"""The plan a search runs on a freshly bulk-loaded store (no ANALYZE, no statistics): the HNSW
index for a large namespace, an exact scan for a small one or for a filter whose equalities match
few items, and an exact fallback when a filter is narrower than the index walk reaches. On a real
Postgres with pgvector."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from langgraph.store.base import PutOp

from durable_graph.memory import HashingEmbedder, PgVectorStore, schema, tuning
from durable_graph.memory.explain import explain_search, vector_path
from durable_graph.memory.sql import search_filter
from tests.pg import fresh_database

BIG = 2 * tuning.EXACT_SCAN_MAX_VECTORS + 1000  # "half": h1 matches more than an exact scan takes
GROUPS = 10  # "group": g3 matches BIG / 10, fewer
SMALL = 50
RARE = 4


@pytest.fixture(scope="module")
def loaded(pg_server: str) -> Iterator[PgVectorStore]:
    with fresh_database(pg_server, "plans") as url:
        store = PgVectorStore(url, embed=HashingEmbedder(32), fields=["text"])
        store.open()
        with psycopg.connect(url, autocommit=True) as conn:
            for table in (schema.ITEMS, schema.VECTORS):
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)".encode())
        try:
            puts = [
                PutOp(
                    ("big",),
                    str(i),
                    {
                        "text": f"note {i} about topic {i % 37}",
                        "group": "rare" if i < RARE else f"g{i % GROUPS}",
                        "half": f"h{i % 2}",
                        "n": i,
                    },
                )
                for i in range(BIG)
            ]
            puts += [PutOp(("small",), str(i), {"text": f"small note {i}"}) for i in range(SMALL)]
            for first in range(0, len(puts), 500):
                store.batch(puts[first : first + 500])
            with psycopg.connect(url) as conn:
                analyzed = conn.execute(
                    "SELECT count(*) FROM pg_stat_user_tables WHERE relname = ANY(%s) "
                    "AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
                    [[schema.ITEMS, schema.VECTORS]],
                ).fetchone()
            assert analyzed == (0,), "the tables must be as a bulk load leaves them, never analyzed"
            yield store
        finally:
            store.close()


def test_a_large_namespace_is_searched_through_the_index(loaded: PgVectorStore) -> None:
    plan = explain_search(loaded, ("big",), query="note about topic 5")
    assert vector_path(plan) == "index", plan
    assert len(loaded.search(("big",), query="note about topic 5", limit=10)) == 10


def test_the_whole_store_is_searched_through_the_index(loaded: PgVectorStore) -> None:
    plan = explain_search(loaded, (), query="note about topic 5")
    assert vector_path(plan) == "index", plan


def test_a_small_namespace_is_searched_exactly(loaded: PgVectorStore) -> None:
    plan = explain_search(loaded, ("small",), query="small note 7")
    assert vector_path(plan) == "exact", plan
    # through the key index, not a scan of every vector in the store (the plan is generic: it was
    # made without knowing the namespace)
    scans = [line for line in plan.splitlines() if "Seq Scan on dg_store_vectors" in line]
    assert all("never executed" in line for line in scans), plan
    found = loaded.search(("small",), query="small note 7", limit=3)
    assert found[0].key == "7"


def test_a_common_filter_is_served_by_the_index(loaded: PgVectorStore) -> None:
    plan = explain_search(loaded, ("big",), query="note about topic 5", filter={"half": "h1"})
    assert vector_path(plan) == "index", plan
    found = loaded.search(("big",), query="note about topic 5", filter={"half": "h1"}, limit=10)
    assert len(found) == 10 and all(item.value["half"] == "h1" for item in found)
    assert (
        loaded._scopes.small("big", search_filter({"half": "h1"}).contained) is False
    )  # counted once, then remembered
    again = loaded.search(("big",), query="note about topic 5", filter={"half": "h1"}, limit=10)
    assert keys(again) == keys(found)


def test_a_filter_whose_equalities_match_few_items_is_searched_exactly(loaded: PgVectorStore) -> None:
    query, group = "note about topic 5", {"group": "g3"}
    plan = explain_search(loaded, ("big",), query=query, filter=group)
    assert vector_path(plan) == "exact", plan
    # the matching items through the GIN index of namespaces and values, then only their vectors
    assert "dg_store_items_filter_idx" in plan, plan
    assert vectors_read_by_exact_scan(plan) <= BIG // GROUPS, plan
    found = loaded.search(("big",), query=query, filter=group, limit=10)
    embedder = HashingEmbedder(32)
    query_vector = embedder.embed_query(query)
    members = [i for i in range(RARE, BIG) if i % GROUPS == 3]
    vectors = embedder.embed_documents([f"note {i} about topic {i % 37}" for i in members])
    best = sorted((sum(a * b for a, b in zip(query_vector, v, strict=True)) for v in vectors), reverse=True)
    assert [round(item.score or 0, 5) for item in found] == [round(score, 5) for score in best[:10]]
    assert (
        loaded._scopes.small("big", search_filter(group).contained) is True
    )  # counted once, then remembered
    assert keys(loaded.search(("big",), query=query, filter=group, limit=10)) == keys(found)


def test_a_filter_narrower_than_a_page_returns_every_match_exactly(loaded: PgVectorStore) -> None:
    plan = explain_search(loaded, ("big",), query="note about topic 5", filter={"group": "rare"})
    assert vector_path(plan) == "exact", plan
    # the items that pass the filter first, then their vectors: not every vector of the namespace
    assert vectors_read_by_exact_scan(plan) <= RARE, plan
    found = loaded.search(("big",), query="note about topic 5", filter={"group": "rare"}, limit=10)
    assert sorted(item.key for item in found) == [str(i) for i in range(RARE)]


def test_a_narrow_filter_without_equalities_falls_back_from_the_index_walk(loaded: PgVectorStore) -> None:
    first = {"n": {"$lt": RARE}}  # no equality to count through the GIN index: the walk comes back short
    plan = explain_search(loaded, ("big",), query="note about topic 5", filter=first)
    assert vector_path(plan) == "exact", plan
    index_walk = next(line for line in plan.splitlines() if "dg_store_vectors_hnsw_idx" in line)
    assert "never executed" not in index_walk, plan
    assert vectors_read_by_exact_scan(plan) <= RARE, plan
    found = loaded.search(("big",), query="note about topic 5", filter=first, limit=10)
    assert sorted(item.key for item in found) == [str(i) for i in range(RARE)]


def keys(items: list) -> list[str]:  # type: ignore[type-arg]
    return [item.key for item in items]


def vectors_read_by_exact_scan(plan: str) -> float:
    """Rows the exact scan read from the vector table (rows x loops of its steps on that table)."""
    lines = plan.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "CTE exact_hits")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    read = 0.0
    for line in lines[start:end]:
        found = re.search(r"on dg_store_vectors \w+ \(actual rows=([\d.]+) loops=(\d+)\)", line)
        if found:
            read += float(found.group(1)) * int(found.group(2))
    return read
