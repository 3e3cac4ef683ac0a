"""The memory store's logic, written once for the sync and the async store.

``batch_steps(settings, ops, scopes)`` is a generator: it validates every op first (so a bad op changes
nothing), yields ``EmbedRequest``s (texts to embed, at most one for documents and one for queries
per batch) and then ``(sql, params)`` statements, receives each one's result (vectors or rows),
and finally returns the batch's results. The drivers in ``store`` only run the steps; they run all
statements of a batch in one transaction. Reads see the database as it was before the batch's puts.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any, Literal, NamedTuple

from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
)
from pgvector import Vector

from durable_graph.errors import EmbeddingError
from durable_graph.memory import namespaces as ns
from durable_graph.memory.config import IndexSettings, Settings
from durable_graph.memory.scopes import ScopeSizes
from durable_graph.memory.sql import (
    Statement,
    get_sql,
    list_namespaces_sql,
    search_filter,
    search_sql,
    strip_mode,
    write_statements,
)
from durable_graph.memory.validation import validate


class EmbedRequest(NamedTuple):
    texts: list[str]
    kind: Literal["documents", "queries"]


Step = EmbedRequest | tuple[str, list[Any]] | Statement


def to_vectors(raw: Any, count: int, dims: int, what: str) -> list[Vector]:
    """Check what an embedder returned and make each vector unit length (so inner product = cosine)."""
    rows = list(raw) if raw is not None else []
    if len(rows) != count:
        raise EmbeddingError(f"the embedder returned {len(rows)} vectors for {count} {what}")
    vectors = []
    for i, row in enumerate(rows):
        values = list(map(float, row))
        if len(values) != dims:
            raise EmbeddingError(
                f"the embedder returned a {len(values)}-dimensional vector for {what} #{i}, "
                f"but the store holds {dims}-dimensional vectors"
            )
        norm = math.hypot(*values)
        if not math.isfinite(norm):
            raise EmbeddingError(
                f"the embedder returned a vector with NaN or infinite values for {what} #{i}"
            )
        if norm and abs(norm - 1.0) > 1e-6:
            values = [v / norm for v in values]
        vectors.append(Vector(values))
    return vectors


def _texts_to_embed(puts: Sequence[PutOp], index: IndexSettings) -> list[tuple[str, str, str, str]]:
    """``(prefix, key, field, text)`` for every text the puts ask to embed."""
    wanted: dict[tuple[str, str, str], str] = {}
    for op in puts:
        prefix = ns.to_text(tuple(op.namespace))
        for path, tokens in _index_paths(op, index):
            texts = get_text_at_path(op.value, tokens)
            for i, text in enumerate(texts):
                wanted[(prefix, op.key, f"{path}.{i}" if len(texts) > 1 else path)] = text
    return [(*where, text) for where, text in wanted.items()]


def _index_paths(op: PutOp, index: IndexSettings) -> Sequence[tuple[str, Any]]:
    if op.index is None:
        return index.tokenized
    if op.index is False:
        return ()
    return [(f, f if f == "$" else tokenize_path(f)) for f in op.index]


def _item(row: Sequence[Any]) -> Item:
    prefix, key, value, created_at, updated_at = row[:5]
    return Item(
        value=value, key=key, namespace=ns.from_text(prefix), created_at=created_at, updated_at=updated_at
    )


def _search_item(row: Sequence[Any]) -> SearchItem:
    prefix, key, value, created_at, updated_at, score = row[:6]
    return SearchItem(
        namespace=ns.from_text(prefix),
        key=key,
        value=value,
        created_at=created_at,
        updated_at=updated_at,
        score=None if score is None else float(score),
    )


def needs_transaction(ops: Sequence[Op]) -> bool:
    """False for a batch of one read, which runs as one statement (atomic by itself)."""
    return len(ops) != 1 or isinstance(ops[0], PutOp)


def batch_steps(
    settings: Settings, ops: Sequence[Op], scopes: ScopeSizes | None = None
) -> Generator[Step, Any, list[Result]]:
    """``scopes``: what earlier searches counted of their namespaces (``scopes.ScopeSizes``), reused
    and updated."""
    for op in ops:
        validate(op)
    results: list[Result] = [None] * len(ops)
    index = settings.index

    puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
    for op in ops:
        if isinstance(op, PutOp):
            puts[(tuple(op.namespace), op.key)] = op  # the last write of a key wins
    upserts = [op for op in puts.values() if op.value is not None]
    deletes = [op for op in puts.values() if op.value is None]

    embedded: list[tuple[str, str, str, str]] = []
    doc_vectors: list[Vector] = []
    if index and upserts:
        embedded = _texts_to_embed(upserts, index)
        if embedded:
            unique = list(dict.fromkeys(text for *_, text in embedded))
            raw = yield EmbedRequest(unique, "documents")
            by_text = dict(zip(unique, to_vectors(raw, len(unique), index.dims, "text"), strict=True))
            doc_vectors = [by_text[text] for *_, text in embedded]

    query_vectors: dict[str, Vector] = {}
    searches = [(i, op) for i, op in enumerate(ops) if isinstance(op, SearchOp)]
    if index:
        queries = list(dict.fromkeys(strip_mode(op.query) for _, op in searches if op.query))
        if queries:
            raw = yield EmbedRequest(queries, "queries")
            query_vectors = dict(
                zip(queries, to_vectors(raw, len(queries), index.dims, "query"), strict=True)
            )

    gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
    if gets:
        rows = yield get_sql([op for _, op in gets])
        found = {(ns.from_text(row[0]), row[1]): _item(row) for row in rows}
        for i, op in gets:
            results[i] = found.get((tuple(op.namespace), op.key))
    for i, op in searches:
        vector = query_vectors.get(strip_mode(op.query)) if op.query else None
        prefix = ns.to_text(tuple(op.namespace_prefix))
        checks = search_filter(op.filter)
        equal = checks.contained
        small = scopes.small(prefix) if scopes else None
        few_matches = scopes.small(prefix, equal) if scopes and equal else None
        rows = yield search_sql(op, settings, vector, small, few_matches, checks)
        if scopes and rows:
            if small is None and rows[0][6] is not None:
                scopes.remember(prefix, rows[0][6])
            if equal and few_matches is None and rows[0][7] is not None:
                scopes.remember(prefix, rows[0][7], equal)
        results[i] = [_search_item(row) for row in rows]
    for i, op in enumerate(ops):
        if isinstance(op, ListNamespacesOp):
            rows = yield list_namespaces_sql(op)
            results[i] = [tuple(row[0]) for row in rows]

    yield from write_statements(deletes, upserts, embedded, doc_vectors, replace_vectors=bool(index))
    if scopes:
        for op in upserts:
            scopes.forget_above(tuple(op.namespace))
    return results
