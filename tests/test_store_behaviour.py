"""One behavioural suite for ``PgVectorStore`` and LangGraph's own ``InMemoryStore``: our store must
behave the way LangGraph users expect. Each test works in a namespace of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import BaseStore, GetOp, PutOp
from langgraph.store.memory import InMemoryStore

from durable_graph.memory import PgVectorStore
from tests.test_store_support import cosine, keyword_embed, keyword_vector

DIMS = 8


@pytest.fixture(scope="module")
def pg_store(pg_url: str) -> Iterator[PgVectorStore]:
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=DIMS, fields=["text"])
    store.open()
    yield store
    store.close()


@pytest.fixture(params=["pgvector", "langgraph-inmemory"])
def store(request: pytest.FixtureRequest) -> BaseStore:
    if request.param == "pgvector":
        return request.getfixturevalue("pg_store")  # type: ignore[no-any-return]
    return InMemoryStore(index={"dims": DIMS, "embed": keyword_embed, "fields": ["text"]})


@pytest.fixture
def root() -> str:
    return "t" + uuid.uuid4().hex[:10]


def keys(items: list) -> list[str]:  # type: ignore[type-arg]
    return [item.key for item in items]


def test_put_get_update_delete(store: BaseStore, root: str) -> None:
    ns = (root, "notes")
    assert store.get(ns, "a") is None
    store.put(ns, "a", {"text": "tea", "n": 1, "nested": {"x": [1, 2]}})
    item = store.get(ns, "a")
    assert item is not None
    assert (item.namespace, item.key, item.value) == (
        ns,
        "a",
        {"text": "tea", "n": 1, "nested": {"x": [1, 2]}},
    )
    assert item.created_at <= item.updated_at

    store.put(ns, "a", {"text": "coffee"})
    updated = store.get(ns, "a")
    assert updated is not None and updated.value == {"text": "coffee"}
    assert updated.updated_at >= item.updated_at

    store.delete(ns, "a")
    assert store.get(ns, "a") is None
    store.delete(ns, "never-there")
    assert store.get((root, "other"), "a") is None


def test_search_orders_by_similarity_with_scores(store: BaseStore, root: str) -> None:
    ns = (root, "docs")
    texts = {
        "tea": "tea tea and more tea",
        "mixed": "tea with coffee",
        "coffee": "coffee coffee and a little tea",
        "code": "python and rust",
    }
    for key, text in texts.items():
        store.put(ns, key, {"text": text})
    query = "I would like tea"
    results = store.search((root,), query=query, limit=10)
    expected = sorted(texts, key=lambda k: -cosine(keyword_vector(query), keyword_vector(texts[k])))
    assert keys(results)[:3] == expected[:3] == ["tea", "mixed", "coffee"]
    for result in results:
        assert result.score == pytest.approx(
            cosine(keyword_vector(query), keyword_vector(texts[result.key])), abs=1e-5
        )
    scores = [r.score or 0.0 for r in results]
    assert scores == sorted(scores, reverse=True)

    page = store.search((root,), query=query, limit=2, offset=1)
    assert keys(page) == ["mixed", "coffee"]


def test_search_respects_namespace_prefix_boundaries(store: BaseStore, root: str) -> None:
    store.put((root, "ab"), "x", {"text": "tea"})
    store.put((root, "abc"), "y", {"text": "tea"})
    store.put((root, "ab", "deep"), "z", {"text": "tea"})
    assert sorted(keys(store.search((root, "ab")))) == ["x", "z"]
    assert sorted(keys(store.search((root, "ab"), query="tea"))) == ["x", "z"]
    assert sorted(keys(store.search((root,)))) == ["x", "y", "z"]
    assert keys(store.search((root, "ab", "deep"))) == ["z"]


def test_filters(store: BaseStore, root: str) -> None:
    ns = (root, "f")
    rows = {
        "a": {"text": "tea", "kind": "fact", "score": 1, "name": "ann"},
        "b": {"text": "tea", "kind": "fact", "score": 5, "name": "bob"},
        "c": {"text": "coffee", "kind": "wish", "score": 10, "name": "cid"},
        "d": {"text": "coffee", "kind": "wish", "score": 7.5},
    }
    for key, value in rows.items():
        store.put(ns, key, value)

    def found(filter: dict, query: str | None = None) -> set[str]:  # type: ignore[type-arg]
        return set(keys(store.search((root,), filter=filter, query=query)))

    assert found({"kind": "fact"}) == {"a", "b"}
    assert found({"kind": {"$eq": "wish"}}) == {"c", "d"}
    assert found({"kind": {"$ne": "fact"}}) == {"c", "d"}
    assert found({"score": {"$gt": 5}}) == {"c", "d"}
    assert found({"score": {"$gte": 5}}) == {"b", "c", "d"}
    assert found({"score": {"$lt": 5}}) == {"a"}
    assert found({"score": {"$lte": 7.5}}) == {"a", "b", "d"}
    assert found({"score": {"$gt": 1, "$lt": 10}}) == {"b", "d"}
    assert found({"kind": "wish", "score": {"$gte": 8}}) == {"c"}
    assert found({"name": "bob"}) == {"b"}
    assert found({"kind": "nothing"}) == set()
    assert found({"kind": "wish"}, query="tea") == {"c", "d"}
    assert keys(store.search((root,), filter={"kind": "fact"}, query="tea", limit=1)) in (["a"], ["b"])


def test_equality_filters_on_lists_numbers_and_namespace_prefixes(store: BaseStore, root: str) -> None:
    store.put((root, "ab"), "short", {"text": "tea", "tags": ["x"], "n": 1, "meta": {"a": 1}})
    store.put((root, "ab"), "long", {"text": "tea", "tags": ["x", "y"], "n": 1.0, "meta": {"a": 2}})
    store.put((root, "abc"), "sibling", {"text": "tea", "tags": ["x"], "n": 2, "meta": {"a": 1}})
    store.put((root, "ab", "deep"), "deep", {"text": "coffee", "tags": ["x"], "n": 1, "meta": {"a": 1}})

    def found(prefix: tuple[str, ...], filter: dict, query: str | None = None) -> set[str]:  # type: ignore[type-arg]
        return set(keys(store.search(prefix, filter=filter, query=query)))

    for query in (None, "tea"):
        assert found((root, "ab"), {"tags": ["x"]}, query) == {"short", "deep"}
        assert found((root, "ab"), {"n": 1}, query) == {"short", "long", "deep"}
        assert found((root,), {"meta": {"a": 1}}, query) == {"short", "sibling", "deep"}
        assert found((root, "ab", "deep"), {"n": 1, "tags": ["x"]}, query) == {"deep"}
        assert found((), {"tags": ["y"]}, query) == set()


def test_index_fields_and_per_put_index(store: BaseStore, root: str) -> None:
    ns = (root, "idx")
    store.put(ns, "hidden", {"text": "tea tea tea"}, index=False)
    store.put(ns, "title", {"text": "python", "title": "tea"}, index=["title"])
    store.put(ns, "plain", {"text": "tea and coffee"})
    scored = [r for r in store.search(ns, query="tea") if r.score is not None]
    assert keys(scored) == ["title", "plain"]
    assert scored[0].score == pytest.approx(1.0, abs=1e-5)
    assert store.get(ns, "hidden") is not None  # unindexed items stay readable


@pytest.fixture(params=["pgvector", "langgraph-inmemory"])
def two_field_store(request: pytest.FixtureRequest) -> Iterator[BaseStore]:
    if request.param == "langgraph-inmemory":
        yield InMemoryStore(index={"dims": DIMS, "embed": keyword_embed, "fields": ["title", "body"]})
        return
    store = PgVectorStore(
        request.getfixturevalue("pg_url"), embed=keyword_embed, dims=DIMS, fields=["title", "body"]
    )
    yield store
    store.close()


def test_several_fields_embed_separately(two_field_store: BaseStore, root: str) -> None:
    store, ns = two_field_store, (root, "multi")
    store.put(ns, "doc", {"title": "cat", "body": "dog"})
    store.put(ns, "other", {"title": "music", "body": "cat dog"})
    # each field has its own vector and an item scores by its best field (max pooling, no averaging)
    for query in ("cat", "dog"):
        results = store.search(ns, query=query)
        assert keys(results) == ["doc", "other"]
        assert results[0].score == pytest.approx(1.0, abs=1e-5)
        assert results[1].score == pytest.approx(
            cosine(keyword_vector(query), keyword_vector("cat dog")), abs=1e-5
        )


def test_list_namespaces(store: BaseStore, root: str) -> None:
    for ns in [(root, "a", "x"), (root, "a", "y"), (root, "b", "x"), (root, "b", "z", "deep")]:
        store.put(ns, "k", {"text": "tea"})
    assert store.list_namespaces(prefix=(root,)) == [
        (root, "a", "x"),
        (root, "a", "y"),
        (root, "b", "x"),
        (root, "b", "z", "deep"),
    ]
    assert store.list_namespaces(prefix=(root,), max_depth=2) == [(root, "a"), (root, "b")]
    assert store.list_namespaces(prefix=(root,), suffix=("x",)) == [(root, "a", "x"), (root, "b", "x")]
    assert store.list_namespaces(prefix=(root, "*", "x")) == [(root, "a", "x"), (root, "b", "x")]
    assert store.list_namespaces(prefix=(root,), suffix=("z", "*")) == [(root, "b", "z", "deep")]
    assert store.list_namespaces(prefix=(root,), limit=2, offset=1) == [(root, "a", "y"), (root, "b", "x")]
    assert store.list_namespaces(prefix=(root, "nothing")) == []


def test_batch_results_in_order_and_reads_see_state_before_the_batch(store: BaseStore, root: str) -> None:
    ns = (root, "batch")
    store.put(ns, "old", {"text": "tea"})
    results = store.batch([PutOp(ns, "new", {"text": "rust"}), GetOp(ns, "new"), GetOp(ns, "old")])
    assert results[0] is None and results[1] is None
    assert results[2] is not None and results[2].value == {"text": "tea"}  # type: ignore[union-attr]
    assert store.get(ns, "new") is not None
    # the last write of a key in one batch wins
    store.batch([PutOp(ns, "k", {"text": "one"}), PutOp(ns, "k", {"text": "two"})])
    assert store.get(ns, "k").value == {"text": "two"}  # type: ignore[union-attr]


def test_ttl(store: BaseStore, root: str) -> None:
    ns = (root, "ttl")
    if not store.supports_ttl:
        with pytest.raises(NotImplementedError):
            store.put(ns, "k", {"text": "tea"}, ttl=1)
        return
    store.put(ns, "gone", {"text": "tea"}, ttl=1e-7)  # expires within microseconds
    store.put(ns, "kept", {"text": "tea"}, ttl=60)
    assert store.get(ns, "gone") is None
    assert keys(store.search(ns, query="tea")) == ["kept"]
    assert store.get(ns, "kept") is not None


async def test_async_forms(store: BaseStore, root: str) -> None:
    if isinstance(store, PgVectorStore):  # a store of its own, so its async pool lives in this test's loop
        store = PgVectorStore(store.conninfo, embed=keyword_embed, dims=DIMS, fields=["text"])
        await store.aopen()
        try:
            await _async_forms(store, root)
        finally:
            await store.aclose()
    else:
        await _async_forms(store, root)


async def _async_forms(store: BaseStore, root: str) -> None:
    ns = (root, "async")
    await store.aput(ns, "a", {"text": "tea", "n": 1})
    await store.aput(ns, "b", {"text": "coffee", "n": 2})
    item = await store.aget(ns, "a")
    assert item is not None and item.value == {"text": "tea", "n": 1}
    assert keys(await store.asearch((root,), query="coffee", limit=1)) == ["b"]
    assert keys(await store.asearch((root,), filter={"n": {"$gt": 1}})) == ["b"]
    assert await store.alist_namespaces(prefix=(root,)) == [ns]
    await store.adelete(ns, "a")
    assert await store.aget(ns, "a") is None


# namespace paths to match, "*" being the wildcard of list_namespaces
paths = st.lists(st.sampled_from(["a", "b", "c", "*"]), max_size=3).map(tuple)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    namespaces=st.lists(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4).map(tuple), max_size=8
    ),
    prefix=paths,
    suffix=paths,
    max_depth=st.one_of(st.none(), st.integers(1, 4)),
    offset=st.integers(0, 3),
)
def test_list_namespaces_matches_langgraph_in_memory_store(
    pg_store: PgVectorStore,
    namespaces: list[tuple[str, ...]],
    prefix: tuple[str, ...],
    suffix: tuple[str, ...],
    max_depth: int | None,
    offset: int,
) -> None:
    root = "h" + uuid.uuid4().hex[:10]
    reference = InMemoryStore()
    for ns in namespaces:
        for store in (pg_store, reference):
            store.put((root, *ns), "k", {"text": "tea"})
    depth = None if max_depth is None else max_depth + 1
    query = {
        "prefix": (root, *prefix),
        "suffix": suffix or None,
        "max_depth": depth,
        "limit": 5,
        "offset": offset,
    }
    assert pg_store.list_namespaces(**query) == reference.list_namespaces(**query)  # type: ignore[arg-type]


filter_values = {
    "kind": st.sampled_from(["fact", "wish", "note"]),
    "n": st.integers(0, 4),
    "tags": st.sampled_from([["x"], ["x", "y"], []]),
}


@st.composite
def filters(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    fields = draw(st.lists(st.sampled_from(sorted(filter_values)), max_size=3, unique=True))
    chosen = {}
    for field in fields:
        value = draw(filter_values[field])
        operator = draw(st.sampled_from(["plain", "$eq", "$ne"] + (["$gt", "$lte"] if field == "n" else [])))
        chosen[field] = value if operator == "plain" else {operator: value}
    return chosen


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(
        st.tuples(
            st.lists(st.sampled_from(["a", "ab", "b"]), min_size=1, max_size=3).map(tuple),
            st.fixed_dictionaries(filter_values),
        ),
        max_size=12,
    ),
    prefix=st.lists(st.sampled_from(["a", "ab", "b"]), max_size=2).map(tuple),
    filter=filters(),
    query=st.sampled_from([None, "tea"]),
)
def test_filtered_searches_match_langgraph_in_memory_store(
    pg_store: PgVectorStore,
    items: list[tuple[tuple[str, ...], dict]],  # type: ignore[type-arg]
    prefix: tuple[str, ...],
    filter: dict,  # type: ignore[type-arg]
    query: str | None,
) -> None:
    root = "f" + uuid.uuid4().hex[:10]
    reference = InMemoryStore(index={"dims": DIMS, "embed": keyword_embed, "fields": ["text"]})
    for i, (ns, value) in enumerate(items):
        for store in (pg_store, reference):
            store.put((root, *ns), str(i), {"text": "tea", **value})
    found = [
        {
            (item.namespace, item.key)
            for item in store.search((root, *prefix), filter=filter, query=query, limit=50)
        }
        for store in (pg_store, reference)
    ]
    assert found[0] == found[1]
