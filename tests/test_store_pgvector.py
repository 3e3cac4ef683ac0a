"""PgVectorStore beyond the shared behaviour: hybrid search, schema and dims, bad input, scoped
handles, embedding batches, TTL sweeps and concurrent migrations. All on a real Postgres."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    SearchOp,
)
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from durable_graph.errors import EmbeddingError, InvalidFilterError, StoreConfigError
from durable_graph.memory import HashingEmbedder, PgVectorStore, schema, tuning
from durable_graph.memory.sql import search_sql
from durable_graph.migrations import migrate
from tests.pg import fresh_database
from tests.test_store_support import TOPICS, AsyncCountingEmbed, CountingEmbed, keyword_embed

DIMS = len(TOPICS)


@pytest.fixture(scope="module")
def store(pg_url: str) -> Iterator[PgVectorStore]:
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=DIMS, fields=["text"])
    store.open()
    yield store
    store.close()


@pytest.fixture
def root() -> str:
    return "t" + uuid.uuid4().hex[:10]


def keys(items: list) -> list[str]:  # type: ignore[type-arg]
    return [item.key for item in items]


# ---------------------------------------------------------------- hybrid search


def test_hybrid_search_beats_pure_vector_search_on_exact_word_queries(
    store: PgVectorStore, root: str
) -> None:
    """The test embedder, like many sentence models, sees topics but not ticket codes. Asked about
    a ticket by its code, pure vector search can only guess among same-topic notes; hybrid search
    adds full-text ranks, where the rare code word weighs most, and finds the note."""
    ns = (root, "tickets")
    topics = ["tea", "coffee", "music", "python"]
    notes = {}
    for i in range(12):
        topic = topics[i % len(topics)]
        code = f"T{4000 + i * 37}"
        notes[code] = f"ticket {code}: the {topic} order was changed and the {topic} team agreed"
    for code, text in notes.items():
        store.put(ns, code, {"text": text})

    def reciprocal_rank(query: str, code: str) -> float:
        found = keys(store.search(ns, query=query, limit=10))
        return 1 / (found.index(code) + 1) if code in found else 0.0

    vector_rr, hybrid_rr = [], []
    for i, code in enumerate(notes):
        query = f"what did we decide about the {topics[i % len(topics)]} in ticket {code}?"
        vector_rr.append(reciprocal_rank(query, code))
        hybrid_rr.append(reciprocal_rank("hybrid: " + query, code))
    assert all(rr == 1.0 for rr in hybrid_rr), hybrid_rr
    assert sum(vector_rr) / len(vector_rr) < 0.7, vector_rr

    # the store option makes every query hybrid; scores are the fused reciprocal-rank sums
    hybrid_store = PgVectorStore(store.conninfo, embed=keyword_embed, dims=DIMS, fields=["text"], hybrid=True)
    try:
        results = hybrid_store.search(ns, query="ticket T4037 coffee", limit=3)
        assert results[0].key == "T4037"
        assert results[0].score is not None and 0 < results[0].score <= 2 / 61
    finally:
        hybrid_store.close()


# ---------------------------------------------------------------- schema, dims


def test_opening_with_other_dims_is_refused_and_nothing_is_lost(pg_server: str) -> None:
    with fresh_database(pg_server, "dims") as url:
        first = PgVectorStore(url, embed=HashingEmbedder(64))
        first.put(("notes",), "a", {"text": "keep me"})
        first.close()

        other = PgVectorStore(url, embed=HashingEmbedder(32))
        with pytest.raises(StoreConfigError, match=r"64-dimensional.*dims=32"):
            other.open()
        with pytest.raises(StoreConfigError, match="dims=64"):
            other.get(("notes",), "a")
        other.close()

        again = PgVectorStore(url, dims=64)
        item = again.get(("notes",), "a")
        assert item is not None and item.value == {"text": "keep me"}
        assert keys(again.search(("notes",), query="keep")) == ["a"]
        again.close()
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT component, version FROM durable_graph_migrations ORDER BY 1"
            ).fetchall() == [("store", 1), ("store", 2), ("store-vectors", 1), ("store-vectors", 2)]
            assert conn.execute("SELECT value FROM dg_store_meta WHERE name = 'dims'").fetchone() == (64,)


V1_VECTOR_INDEX = """CREATE INDEX dg_store_vectors_hnsw_idx ON dg_store_vectors
    USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 48)"""


def test_a_store_made_by_the_first_vectors_schema_is_migrated_and_keeps_its_items(pg_server: str) -> None:
    """Version 1 indexed the full vectors; version 2 indexes them at half precision."""
    with fresh_database(pg_server, "vectors_v1") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, "store", schema.STORE_MIGRATIONS)
            migrate(conn, "store-vectors", schema.vector_migrations(64, schema.HNSWConfig())[:1])
            conn.execute(V1_VECTOR_INDEX)
        with psycopg.connect(url, autocommit=True) as conn:  # items written while at version 1
            register_vector(conn)
            for key, text in (("tea", "green tea leaves"), ("cars", "engines and wheels")):
                conn.execute(
                    "INSERT INTO dg_store_items (prefix, key, value) VALUES ('notes', %s, %s)",
                    (key, Jsonb({"text": text})),
                )
                conn.execute(
                    "INSERT INTO dg_store_vectors (prefix, key, field, embedding)"
                    " VALUES ('notes', %s, '$', %s)",
                    (key, Vector(HashingEmbedder(64).embed_query(text))),
                )
        store = PgVectorStore(url, embed=HashingEmbedder(64))
        try:
            found = store.search(("notes",), query="green tea")
            assert store.get(("notes",), "cars") is not None
        finally:
            store.close()
        assert keys(found)[0] == "tea"
        with psycopg.connect(url) as conn:
            definition = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'dg_store_vectors_hnsw_idx'"
            ).fetchone()
        assert definition is not None and "halfvec(64)" in definition[0]


def test_items_stored_before_the_filter_index_are_found_through_it(pg_server: str) -> None:
    """Version 2 of the items' schema adds the namespace prefixes each item falls under, indexed
    with its value; items stored at version 1 get them from the migration."""
    with fresh_database(pg_server, "items_v1") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, "store", schema.STORE_MIGRATIONS[:1])
            for prefix, key, kind in (("a.b", "1", "fact"), ("a.b.c", "2", "fact"), ("a.bc", "3", "fact")):
                conn.execute(
                    "INSERT INTO dg_store_items (prefix, key, value) VALUES (%s, %s, %s)",
                    (prefix, key, Jsonb({"kind": kind})),
                )
        store = PgVectorStore(url, embed=False)
        try:
            assert sorted(keys(store.search(("a", "b"), filter={"kind": "fact"}))) == ["1", "2"]
            assert sorted(keys(store.search(("a",), filter={"kind": "fact"}))) == ["1", "2", "3"]
            store.put(("a", "b"), "4", {"kind": "fact"})
            assert sorted(keys(store.search(("a", "b"), filter={"kind": "fact"}))) == ["1", "2", "4"]
        finally:
            store.close()
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT key, prefixes FROM dg_store_items ORDER BY key").fetchall()
        assert rows == [
            ("1", ["a", "a.b"]),
            ("2", ["a", "a.b", "a.b.c"]),
            ("3", ["a", "a.bc"]),
            ("4", ["a", "a.b"]),
        ]


def test_vector_search_is_served_by_the_hnsw_index(pg_server: str) -> None:
    with fresh_database(pg_server, "index_use") as url:
        store = PgVectorStore(url, embed=HashingEmbedder(32))
        try:
            store.batch([PutOp(("docs",), str(i), {"text": f"document number {i}"}) for i in range(300)])
        finally:
            store.close()
        statement, params, _ = search_sql(
            SearchOp(("docs",), query="number 7", limit=5), store.settings, Vector([1.0] + [0.0] * 31)
        )
        with psycopg.connect(url) as conn:
            register_vector(conn)
            conn.execute("ANALYZE")
            # Only an index that yields rows in the wanted order avoids the sort: the HNSW one, if the
            # statement orders by exactly the indexed expression.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.execute(f"SET {setting} = off")
            plan = "\n".join(row[0] for row in conn.execute(("EXPLAIN " + statement).encode(), params))
        assert "dg_store_vectors_hnsw_idx" in plan, plan


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"m": 1}, "m must be an integer from 2 to 100"),
        ({"ef_search": 5000}, "ef_search must be an integer from 1 to 1000"),
        ({"ef_construction": True}, "ef_construction must be an integer"),
        ({"m": 32, "ef_construction": 40}, "at least 2 \\* m"),
    ],
)
def test_hnsw_settings_outside_pgvectors_bounds_are_refused(settings: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(StoreConfigError, match=message):
        schema.HNSWConfig(**settings)


def ef_search_of(store: PgVectorStore) -> str:
    with store._sync_pool().connection() as conn:
        row = conn.execute("SHOW hnsw.ef_search").fetchone()
    assert row is not None
    return str(row[0])


async def aef_search_of(store: PgVectorStore) -> str:
    async with (await store._async_pool()).connection() as conn:
        row = await (await conn.execute("SHOW hnsw.ef_search")).fetchone()
    assert row is not None
    return str(row[0])


async def test_an_index_is_searched_as_wide_as_its_build_needs(pg_server: str) -> None:
    with fresh_database(pg_server, "ef_search") as url:
        # as an earlier version built it: a sparser graph than today's default
        old = PgVectorStore(
            url, embed=keyword_embed, dims=DIMS, hnsw=schema.HNSWConfig(m=12, ef_construction=32)
        )
        assert ef_search_of(old) == str(tuning.HNSW_EF_SEARCH)
        old.close()

        reopened = PgVectorStore(url, embed=keyword_embed, dims=DIMS)
        assert ef_search_of(reopened) == str(tuning.SPARSE_INDEX_EF_SEARCH)
        assert await aef_search_of(reopened) == str(tuning.SPARSE_INDEX_EF_SEARCH)
        assert (reopened.hnsw.m, reopened.hnsw.ef_construction) == (12, 32)
        await reopened.aclose()

        chosen = PgVectorStore(url, embed=keyword_embed, dims=DIMS, hnsw=schema.HNSWConfig(ef_search=60))
        assert ef_search_of(chosen) == "60"
        chosen.close()

    with fresh_database(pg_server, "ef_search_new") as url:
        new = PgVectorStore(url, embed=keyword_embed, dims=DIMS)
        assert ef_search_of(new) == str(tuning.HNSW_EF_SEARCH)
        assert (new.hnsw.m, new.hnsw.ef_construction) == (tuning.HNSW_M, tuning.SMALL_VECTOR_EF_CONSTRUCTION)
        new.close()


def built_options(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT reloptions FROM pg_class WHERE relname = '{schema.INDEX}'").fetchone()
    assert row is not None
    return dict(option.split("=", 1) for option in row[0])


@pytest.mark.parametrize(
    ("dims", "hnsw", "built"),
    [
        (64, None, {"m": "10", "ef_construction": "96"}),
        (128, schema.HNSWConfig(ef_search=200), {"m": "10", "ef_construction": "96"}),
        (129, None, {"m": "10", "ef_construction": "64"}),
        (384, schema.HNSWConfig(m=40), {"m": "40", "ef_construction": "80"}),
        (64, schema.HNSWConfig(ef_construction=32), {"m": "10", "ef_construction": "32"}),
    ],
)
def test_the_index_is_built_for_the_vector_size_unless_told(
    pg_server: str, dims: int, hnsw: schema.HNSWConfig | None, built: dict[str, str]
) -> None:
    with fresh_database(pg_server, "built") as url:
        store = PgVectorStore(url, embed=lambda texts: [[1.0] * dims for _ in texts], dims=dims, hnsw=hnsw)
        store.put(("docs",), "a", {"text": "a"})
        assert built_options(url) == built
        assert store.hnsw.ef_construction == int(built["ef_construction"])
        store.close()


def test_dims_beyond_what_the_index_takes_are_refused() -> None:
    with pytest.raises(StoreConfigError, match="between 1 and 4000"):
        PgVectorStore("postgresql://nobody@localhost/none", embed=keyword_embed, dims=4001)


def test_custom_embedder_needs_dims() -> None:
    with pytest.raises(StoreConfigError, match="dims is required"):
        PgVectorStore("postgresql://nobody@localhost/none", embed=keyword_embed)
    with pytest.raises(StoreConfigError, match="makes 384-dimensional"):
        PgVectorStore("postgresql://nobody@localhost/none", embed="minilm", dims=100)


def _open_and_put(url: str, n: int) -> None:
    store = PgVectorStore(url, embed=HashingEmbedder(32))
    store.put(("proc", str(n)), "k", {"text": f"process {n}"})
    store.close()


def test_processes_migrate_and_write_at_once(pg_server: str) -> None:
    with fresh_database(pg_server, "concurrent") as url:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_open_and_put, args=(url, n)) for n in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 4
        store = PgVectorStore(url, embed=HashingEmbedder(32))
        assert store.list_namespaces(prefix=("proc",)) == [("proc", str(n)) for n in range(4)]
        assert keys(store.search(("proc",), query="process 2", limit=1)) == ["k"]
        store.close()
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT component, version FROM durable_graph_migrations ORDER BY 1"
            ).fetchall()
            assert rows == [("store", 1), ("store", 2), ("store-vectors", 1), ("store-vectors", 2)]


# ---------------------------------------------------------------- bad input, nothing lost


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        ("users", "must be a tuple"),
        ((), "cannot be empty"),
        (("users", ""), "cannot be empty strings"),
        (("users.alice",), r"period \('.'\)"),
        (("users", 7), "is a int, not a string"),
        (("users", "a\x00b"), "NUL"),
        (("langgraph", "x"), "reserved"),
    ],
)
def test_bad_namespaces_are_refused_and_nothing_is_lost(
    store: PgVectorStore, root: str, namespace: object, message: str
) -> None:
    ns = (root, "safe")
    store.put(ns, "a", {"text": "tea"})
    with pytest.raises(InvalidNamespaceError, match=message):
        store.batch([PutOp(ns, "a", {"text": "changed"}), PutOp(namespace, "b", {"text": "x"})])  # type: ignore[arg-type]
    assert store.get(ns, "a").value == {"text": "tea"}  # type: ignore[union-attr]


def test_bad_values_keys_and_ttls_are_refused(store: PgVectorStore, root: str) -> None:
    ns = (root, "values")
    store.put(ns, "a", {"text": "tea"})
    bad = [
        (PutOp(ns, "a", ["not", "a", "dict"]), "must be a dict"),  # type: ignore[arg-type]
        (PutOp(ns, "a", {"when": object()}), "not JSON-serialisable"),
        (PutOp(ns, "a", {"x": float("nan")}), "not JSON-serialisable"),
        (PutOp(ns, "a", {"x": "nul\x00"}), "NUL character"),
        (PutOp(ns, 5, {"x": 1}), "key must be a string"),  # type: ignore[arg-type]
        (PutOp(ns, "a", {"x": 1}, ttl=-1), "ttl must be a positive number"),
        (PutOp(ns, "a", {"x": 1}, index="text"), "index must be None, False or a list"),  # type: ignore[arg-type]
    ]
    for op, message in bad:
        with pytest.raises(ValueError, match=message):
            store.batch([PutOp(ns, "a", {"text": "changed"}), op])
    assert store.get(ns, "a").value == {"text": "tea"}  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="limit must be an integer >= 0"):
        store.search(ns, limit=-1)
    with pytest.raises(ValueError, match="max_depth must be an integer >= 1"):
        store.list_namespaces(max_depth=0)


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"n": {"$in": [1, 2]}}, r"unsupported operator '\$in'"),
        ({"n": {"$gt": [1]}}, r"\$gt needs a number or a string"),
        ({"n": {"$lt": None}}, r"\$lt needs a number or a string"),
        ({"n": {"$gte": float("inf")}}, "finite number"),
        ({"n": {"$gt": 1, "x": 2}}, "unsupported operator 'x'"),
        ({"n": {"$eq": object()}}, "not JSON"),
        ({5: "x"}, "field names must be non-empty strings"),
        (["n", 1], "filter must be a dict"),
    ],
)
def test_malformed_filters_give_clear_errors(
    store: PgVectorStore, root: str, filter: object, message: str
) -> None:
    ns = (root, "filters")
    store.put(ns, "a", {"text": "tea", "n": 1})
    with pytest.raises(InvalidFilterError, match=message):
        store.search(ns, filter=filter)  # type: ignore[arg-type]
    with pytest.raises(InvalidFilterError, match=message):
        store.batch([PutOp(ns, "a", {"text": "changed"}), SearchOp(ns, filter=filter)])  # type: ignore[arg-type]
    assert store.get(ns, "a").value == {"text": "tea", "n": 1}  # type: ignore[union-attr]


def test_filters_compare_by_json_type(store: PgVectorStore, root: str) -> None:
    ns = (root, "types")
    store.put(ns, "num", {"v": 10})
    store.put(ns, "str", {"v": "10"})
    store.put(ns, "date", {"v": "2026-11-26"})
    store.put(ns, "none", {"other": 1})
    assert set(keys(store.search(ns, filter={"v": {"$gt": 9}}))) == {"num"}  # numerically, 10 > 9
    assert set(keys(store.search(ns, filter={"v": {"$gte": "2026-01-01"}}))) == {"date"}
    assert set(keys(store.search(ns, filter={"v": {"$ne": 10}}))) == {"str", "date", "none"}


def test_an_equality_filter_matches_equal_values_not_values_that_contain_it(
    store: PgVectorStore, root: str
) -> None:
    ns = (root, "contains")
    store.put(ns, "equal", {"meta": {"a": 1}, "tags": ["x"]})
    store.put(ns, "more", {"meta": {"a": 1, "b": 2}, "tags": ["x", "y"]})
    assert keys(store.search(ns, filter={"meta": {"a": 1}})) == ["equal"]
    assert keys(store.search(ns, filter={"tags": ["x"]})) == ["equal"]


@pytest.mark.parametrize(
    "bad_embed",
    [
        lambda texts: [[1.0] * (DIMS + 1) for _ in texts],
        lambda texts: [[1.0] * DIMS for _ in texts][:-1],
        lambda texts: [[float("nan")] * DIMS for _ in texts],
    ],
    ids=["wrong-size", "too-few", "nan"],
)
def test_wrong_vectors_from_the_embedder_are_refused_and_nothing_is_lost(
    store: PgVectorStore, root: str, bad_embed: object
) -> None:
    ns = (root, "vectors")
    store.put(ns, "a", {"text": "tea"})
    broken = PgVectorStore(store.conninfo, embed=bad_embed, dims=DIMS, fields=["text"])
    try:
        with pytest.raises(EmbeddingError, match="the embedder returned"):
            broken.batch([PutOp(ns, "a", {"text": "coffee"}), PutOp(ns, "b", {"text": "rust"})])
    finally:
        broken.close()
    assert store.get(ns, "a").value == {"text": "tea"}  # type: ignore[union-attr]
    assert store.get(ns, "b") is None
    assert keys(store.search(ns, query="tea")) == ["a"]


# ---------------------------------------------------------------- scoped handles


def test_scoped_handle_cannot_reach_outside_its_prefix(store: PgVectorStore, root: str) -> None:
    store.put((root, "alice", "memories"), "a1", {"text": "alice likes tea"})
    store.put((root, "alicia", "memories"), "x1", {"text": "alicia likes tea"})
    store.put((root, "bob", "memories"), "b1", {"text": "bob likes tea"})
    alice = store.scoped((root, "alice"))

    alice.put(("memories",), "a2", {"text": "alice plays music"})
    assert store.get((root, "alice", "memories"), "a2") is not None
    item = alice.get(("memories",), "a1")
    assert item is not None and item.namespace == ("memories",)
    found = alice.search((), query="tea")
    assert keys(found)[0] == "a1" and sorted(keys(found)) == ["a1", "a2"]  # nothing of alicia's or bob's
    assert sorted(keys(alice.search(()))) == ["a1", "a2"]
    assert alice.list_namespaces() == [("memories",)]
    assert alice.list_namespaces(suffix=("alice",)) == []
    assert alice.list_namespaces(prefix=("*",)) == [("memories",)]
    assert alice.list_namespaces(max_depth=1) == [("memories",)]

    # a full outside namespace is read as relative to the scope: it names nothing there
    outside = (root, "bob", "memories")
    assert alice.get(outside, "b1") is None
    assert alice.search(outside) == []
    assert alice.list_namespaces(prefix=outside) == []
    # anything that could climb out or alias another namespace is refused outright
    for hostile in [("..", "bob"), (".",), ("memories.x",), f"{root}.bob", ("", "bob"), (None,), [["x"]]]:
        with pytest.raises(InvalidNamespaceError):
            alice.get(hostile, "b1")  # type: ignore[arg-type]
        with pytest.raises(InvalidNamespaceError):
            alice.search(hostile)  # type: ignore[arg-type]
        with pytest.raises(InvalidNamespaceError):
            alice.put(hostile, "b1", {"text": "overwrite"})  # type: ignore[arg-type]
        with pytest.raises(InvalidNamespaceError):
            alice.list_namespaces(prefix=hostile)  # type: ignore[arg-type]
    # raw ops with hostile paths stay inside the scope too
    ops: list[Op] = [
        GetOp((root, "bob", "memories"), "b1"),
        SearchOp(("*",), query="tea"),
        ListNamespacesOp((MatchCondition("prefix", ("*", "*")), MatchCondition("suffix", ("memories",)))),
    ]
    got, searched, listed = alice.batch(ops)
    assert got is None
    assert searched == []  # "*" is a wildcard only when listing namespaces
    assert listed == []
    alice.delete((root, "bob", "memories"), "b1")
    assert store.get((root, "bob", "memories"), "b1") is not None
    nested = alice.scoped(("memories",))
    assert sorted(keys(nested.search(()))) == ["a1", "a2"]
    with pytest.raises(InvalidNamespaceError):
        store.scoped(())


async def test_scoped_handle_async(pg_url: str, root: str) -> None:
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=DIMS, fields=["text"])
    await store.aopen()
    try:
        alice, bob = store.scoped((root, "alice")), store.scoped((root, "bob"))
        await alice.aput(("m",), "k", {"text": "tea"})
        await bob.aput(("m",), "k", {"text": "coffee"})
        assert (await alice.aget(("m",), "k")).value == {"text": "tea"}  # type: ignore[union-attr]
        assert keys(await bob.asearch((), query="tea")) == ["k"]
        assert (await bob.asearch((), query="tea"))[0].value == {"text": "coffee"}
    finally:
        await store.aclose()


# ---------------------------------------------------------------- embedding batches


def test_one_embed_call_per_batch(store: PgVectorStore, root: str) -> None:
    counting = CountingEmbed()
    counted = PgVectorStore(store.conninfo, embed=counting, dims=DIMS, fields=["text", "title"])
    try:
        ns = (root, "batched")
        ops = [PutOp(ns, f"k{i}", {"text": f"tea {i % 3}", "title": "coffee"}) for i in range(20)]
        counted.batch(ops)
        assert len(counting.calls) == 1
        assert sorted(counting.calls[0]) == ["coffee", "tea 0", "tea 1", "tea 2"]  # each distinct text once

        counting.calls.clear()
        counted.batch([SearchOp(ns, query=q) for q in ("tea", "coffee", "tea", "music")])
        assert counting.calls == [["tea", "coffee", "music"]]

        counting.calls.clear()
        counted.batch([PutOp(ns, "x", {"text": "rust"}), SearchOp(ns, query="rust"), GetOp(ns, "x")])
        assert sorted(map(tuple, counting.calls)) == [("rust",), ("rust",)]  # documents once, queries once

        counting.calls.clear()
        counted.batch([PutOp(ns, "y", {"text": "rust"}, index=False), SearchOp(ns), GetOp(ns, "x")])
        assert counting.calls == []
    finally:
        counted.close()


async def test_async_embedder_batches_in_async_and_sync_code(pg_url: str, root: str) -> None:
    counting = AsyncCountingEmbed()
    store = PgVectorStore(pg_url, embed=counting, dims=DIMS, fields=["text"])
    await store.aopen()
    try:
        ns = (root, "async-embed")
        await store.abatch([PutOp(ns, f"k{i}", {"text": t}) for i, t in enumerate(["tea", "rust", "cat"])])
        assert counting.calls == [["tea", "rust", "cat"]]
        assert keys(await store.asearch(ns, query="rust", limit=1)) == ["k1"]
        # sync code with an async embedder works too (it runs on a private loop)
        assert keys(store.search(ns, query="cat", limit=1)) == ["k2"]
    finally:
        await store.aclose()


# ---------------------------------------------------------------- TTL


def _expires_at(url: str, ns: tuple[str, ...], key: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT expires_at FROM dg_store_items WHERE prefix = %s AND key = %s", (".".join(ns), key)
        ).fetchone()
        return row[0] if row else None


def test_ttl_refresh_on_read_and_sweep(store: PgVectorStore, root: str) -> None:
    ns = (root, "ttl")
    store.put(ns, "short", {"text": "tea"}, ttl=1e-7)
    store.put(ns, "long", {"text": "tea"}, ttl=60)
    store.put(ns, "forever", {"text": "tea"})
    assert _expires_at(store.conninfo, ns, "forever") is None

    before = _expires_at(store.conninfo, ns, "long")
    store.get(ns, "long", refresh_ttl=False)
    assert _expires_at(store.conninfo, ns, "long") == before
    store.get(ns, "long")
    after_get = _expires_at(store.conninfo, ns, "long")
    assert after_get > before  # type: ignore[operator]
    store.search(ns, query="tea")
    assert _expires_at(store.conninfo, ns, "long") > after_get  # type: ignore[operator]

    assert store.get(ns, "short") is None  # expired items are never returned, even before a sweep
    assert store.sweep_ttl() >= 1
    assert _expires_at(store.conninfo, ns, "short") is None
    with psycopg.connect(store.conninfo) as conn:
        assert conn.execute(
            "SELECT count(*) FROM dg_store_vectors WHERE prefix = %s AND key = 'short'", (".".join(ns),)
        ).fetchone() == (0,)
    assert sorted(keys(store.search(ns))) == ["forever", "long"]


async def test_async_sweep_and_background_sweeper(pg_url: str, root: str) -> None:
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=DIMS, fields=["text"], ttl={"default_ttl": 1e-7})
    await store.aopen()
    try:
        ns = (root, "sweeper")
        await store.aput(ns, "a", {"text": "tea"})  # default_ttl applies
        await store.aput(ns, "b", {"text": "tea"}, ttl=None)
        assert await store.asweep_ttl() >= 1
        assert keys(await store.asearch(ns)) == ["b"]

        await store.aput(ns, "c", {"text": "tea"}, ttl=1e-7)
        store.start_ttl_sweeper(sweep_interval_minutes=0.001)
        deadline = time.monotonic() + 30
        while _count_rows(pg_url, ns) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count_rows(pg_url, ns) == 1
        assert store.stop_ttl_sweeper()
    finally:
        await store.aclose()


def _count_rows(url: str, ns: tuple[str, ...]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM dg_store_items WHERE prefix = %s", (".".join(ns),)
        ).fetchone()
        return int(row[0]) if row else 0
