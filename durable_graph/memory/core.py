"""The memory store's logic, written once for the sync and the async store.

``batch_steps(settings, ops)`` is a generator: it validates every op first (so a bad op changes
nothing), yields ``EmbedRequest``s (texts to embed, at most one for documents and one for queries
per batch) and then ``(sql, params)`` statements, receives each one's result (vectors or rows),
and finally returns the batch's results. The drivers in ``store`` only run the steps; they run all
statements of a batch in one transaction. Reads see the database as it was before the batch's puts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
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
from durable_graph.memory.filters import filter_sql
from durable_graph.memory.schema import ITEMS, TEXT_SEARCH_CONFIG, VECTORS

HYBRID_PREFIX = "hybrid:"
RRF_K = 60
_NOT_EXPIRED = "({a}.expires_at IS NULL OR {a}.expires_at > now())"


@dataclass(frozen=True)
class IndexSettings:
    """Which fields are embedded, by what, into vectors of which size."""

    embeddings: Embeddings
    dims: int
    fields: tuple[str, ...] = ("$",)
    tokenized: tuple[tuple[str, Any], ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.fields or any(not isinstance(f, str) or not f for f in self.fields):
            raise ValueError(f"index fields must be non-empty JSON paths such as 'text', got {self.fields!r}")
        paths = tuple((f, f if f == "$" else tokenize_path(f)) for f in self.fields)
        object.__setattr__(self, "tokenized", paths)

    @property
    def vectors_per_item(self) -> int:
        wildcard = any("*" in f for f in self.fields)
        return len(self.fields) * (4 if wildcard else 1)


@dataclass(frozen=True)
class Settings:
    index: IndexSettings | None = None
    hybrid: bool = False


class EmbedRequest(NamedTuple):
    texts: list[str]
    kind: Literal["documents", "queries"]


Step = EmbedRequest | tuple[str, list[Any]]


# ---------------------------------------------------------------- validation


def _count(value: Any, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _json_value(op: PutOp) -> str:
    where = f"item {op.key!r} in {tuple(op.namespace)!r}"
    if not isinstance(op.value, Mapping):
        raise ValueError(f"{where}: value must be a dict (or None to delete), got {type(op.value).__name__}")
    try:
        text = json.dumps(dict(op.value), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: value is not JSON-serialisable ({exc})") from exc
    if "\\u0000" in text:
        raise ValueError(f"{where}: value contains a NUL character, which Postgres cannot store")
    return text


def _ttl(op: PutOp) -> float | None:
    if op.ttl is None:
        return None
    if isinstance(op.ttl, bool) or not isinstance(op.ttl, int | float) or not op.ttl > 0:
        raise ValueError(f"item {op.key!r}: ttl must be a positive number of minutes or None, got {op.ttl!r}")
    if not math.isfinite(op.ttl):
        raise ValueError(f"item {op.key!r}: ttl must be finite, got {op.ttl!r}")
    return float(op.ttl)


def _check_index(op: PutOp) -> None:
    if op.index is None or op.index is False:
        return
    if not isinstance(op.index, list | tuple) or any(not isinstance(f, str) or not f for f in op.index):
        raise ValueError(
            f"item {op.key!r}: index must be None, False or a list of field paths, got {op.index!r}"
        )


def _index_paths(op: PutOp, index: IndexSettings) -> Sequence[tuple[str, Any]]:
    if op.index is None:
        return index.tokenized
    if op.index is False:
        return ()
    return [(f, f if f == "$" else tokenize_path(f)) for f in op.index]


def _validate_conditions(conditions: Any) -> tuple[MatchCondition, ...]:
    checked = []
    for condition in conditions or ():
        if not isinstance(condition, MatchCondition) or condition.match_type not in ("prefix", "suffix"):
            raise ValueError(f"match condition must be a prefix or suffix MatchCondition, got {condition!r}")
        checked.append(MatchCondition(condition.match_type, ns.validate_labels(condition.path, what="path")))
    return tuple(checked)


def validate(op: Op) -> None:
    """Raise a clear error if ``op`` is malformed; nothing is executed for a batch holding one."""
    if isinstance(op, GetOp):
        ns.validate_labels(op.namespace)
        ns.validate_key(op.key)
    elif isinstance(op, PutOp):
        ns.validate_item_namespace(op.namespace)
        ns.validate_key(op.key)
        if op.value is not None:
            _json_value(op)
            _ttl(op)
            _check_index(op)
    elif isinstance(op, SearchOp):
        ns.validate_labels(op.namespace_prefix, what="namespace prefix")
        filter_sql("i.value", op.filter)
        _count(op.limit, "search limit")
        _count(op.offset, "search offset")
        if op.query is not None and not isinstance(op.query, str):
            raise ValueError(f"search query must be a string, got {type(op.query).__name__}")
    elif isinstance(op, ListNamespacesOp):
        _validate_conditions(op.match_conditions)
        if op.max_depth is not None:
            _count(op.max_depth, "max_depth", minimum=1)
        _count(op.limit, "list_namespaces limit")
        _count(op.offset, "list_namespaces offset")
    else:
        raise ValueError(
            f"unknown store operation {type(op).__name__}: "
            "expected GetOp, PutOp, SearchOp or ListNamespacesOp"
        )


# ---------------------------------------------------------------- vectors


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


# ---------------------------------------------------------------- SQL


def _get_sql(gets: Sequence[GetOp]) -> tuple[str, list[Any]]:
    sql = f"""
WITH wanted AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::bool[]) AS w(prefix, key, refresh)
), refreshed AS (
    UPDATE {ITEMS} i SET expires_at = now() + i.ttl_minutes * interval '1 minute'
    FROM wanted w
    WHERE i.prefix = w.prefix AND i.key = w.key AND w.refresh
      AND i.ttl_minutes IS NOT NULL AND i.expires_at > now()
)
SELECT i.prefix, i.key, i.value, i.created_at, i.updated_at
FROM {ITEMS} i
WHERE (i.prefix, i.key) IN (SELECT prefix, key FROM wanted) AND {_NOT_EXPIRED.format(a="i")}"""
    return sql, [
        [ns.to_text(tuple(op.namespace)) for op in gets],
        [op.key for op in gets],
        [bool(op.refresh_ttl) for op in gets],
    ]


# Hybrid search fuses two rankings by reciprocal rank fusion: score = sum of 1 / (60 + rank).
# Equal scores share a rank, so a tie on one side is decided by the other.
# Full-text side: each query word weighs its rarity in the searched namespaces,
# ln(1 + N/df) with N and df counted up to DF_CAP rows, and an item scores the sum over the words
# it contains. Postgres' own ts_rank has no notion of rarity, which is what exact-word queries need.
DF_CAP = 10_000
# A lexeme as a one-word tsquery, quoted so that no character of it is read as an operator.
_LEXEME_QUERY = "('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''')::tsquery"


def _text_ctes(where: str) -> str:
    return f"""
query_terms AS (
    SELECT {_LEXEME_QUERY} AS q
    FROM unnest(tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', %s))) AS lexeme
), scope_size AS (
    SELECT count(*)::float8 AS n FROM (SELECT 1 FROM {ITEMS} i WHERE {where} LIMIT {DF_CAP}) s
), weighted_terms AS (
    SELECT t.q, ln(1 + z.n / greatest(1, (
        SELECT count(*) FROM (SELECT 1 FROM {ITEMS} i WHERE i.tsv @@ t.q AND {where} LIMIT {DF_CAP}) d
    ))) AS idf
    FROM query_terms t, scope_size z
), text_ranked AS (
    SELECT i.prefix, i.key, rank() OVER (ORDER BY sum(t.idf) DESC) AS r
    FROM {ITEMS} i JOIN weighted_terms t ON i.tsv @@ t.q
    WHERE {where} AND EXISTS (SELECT 1 FROM {VECTORS} v WHERE v.prefix = i.prefix AND v.key = i.key)
    GROUP BY i.prefix, i.key
    ORDER BY r LIMIT %s
)"""


def _vector_ctes(where_v: str) -> str:
    # Items with several vectors (several fields) score by their best one (max pooling).
    return f"""
vector_hits AS (
    SELECT v.prefix, v.key, v.embedding <#> %b AS distance
    FROM {VECTORS} v JOIN {ITEMS} i ON i.prefix = v.prefix AND i.key = v.key
    WHERE {where_v}
    ORDER BY distance LIMIT %s
), vector_ranked AS (
    SELECT prefix, key, -min(distance) AS similarity,
           rank() OVER (ORDER BY min(distance)) AS r,
           row_number() OVER (ORDER BY min(distance), prefix, key) AS ord
    FROM vector_hits GROUP BY prefix, key
)"""


def search_sql(op: SearchOp, settings: Settings, query_vector: Vector | None) -> tuple[str, list[Any]]:
    """One statement answering ``op``: ranked page, TTL refresh, rows."""
    prefix = ns.validate_labels(op.namespace_prefix, what="namespace prefix")
    where_ns, ns_params = ns.prefix_condition("i.prefix", prefix)
    where_ns_v, _ = ns.prefix_condition("v.prefix", prefix)
    where_filter, filter_params = filter_sql("i.value", op.filter)
    where = f"{where_ns} AND {where_filter} AND {_NOT_EXPIRED.format(a='i')}"
    where_v = f"{where_ns_v} AND {where_filter} AND {_NOT_EXPIRED.format(a='i')}"
    where_params = ns_params + filter_params

    if query_vector is None or settings.index is None:
        ranked = f"""SELECT i.prefix, i.key, NULL::float8 AS score,
           row_number() OVER (ORDER BY i.updated_at DESC, i.prefix, i.key) AS ord
    FROM {ITEMS} i WHERE {where}"""
        return _search_tail(op, "", ranked, where_params)

    candidates = (op.offset + op.limit) * settings.index.vectors_per_item
    head = _vector_ctes(where_v) + ","
    params: list[Any] = [query_vector, *where_params, candidates]
    if not (settings.hybrid or _is_hybrid(op.query)):
        ranked = "SELECT prefix, key, similarity AS score, ord FROM vector_ranked"
        return _search_tail(op, head, ranked, params)
    head += (
        _text_ctes(where)
        + f""", fused AS (
    SELECT prefix, key, sum(1.0 / ({RRF_K} + r))::float8 AS score
    FROM (SELECT prefix, key, r FROM vector_ranked UNION ALL SELECT prefix, key, r FROM text_ranked) u
    GROUP BY prefix, key
),"""
    )
    params += [_strip_mode(op.query), *where_params, *where_params, *where_params, candidates]
    ranked = (
        "SELECT prefix, key, score, row_number() OVER (ORDER BY score DESC, prefix, key) AS ord FROM fused"
    )
    return _search_tail(op, head, ranked, params)


def _search_tail(op: SearchOp, head: str, ranked: str, params: list[Any]) -> tuple[str, list[Any]]:
    refresh = (
        f""", refreshed AS (
    UPDATE {ITEMS} i SET expires_at = now() + i.ttl_minutes * interval '1 minute'
    FROM page p WHERE i.prefix = p.prefix AND i.key = p.key AND i.ttl_minutes IS NOT NULL
)"""
        if op.refresh_ttl
        else ""
    )
    sql = f"""
WITH {head}
ranked AS (
    {ranked}
), page AS (
    SELECT prefix, key, score, ord FROM ranked ORDER BY ord LIMIT %s OFFSET %s
){refresh}
SELECT i.prefix, i.key, i.value, i.created_at, i.updated_at, p.score
FROM page p JOIN {ITEMS} i ON i.prefix = p.prefix AND i.key = p.key
ORDER BY p.ord"""
    return sql, [*params, op.limit, op.offset]


def list_namespaces_sql(op: ListNamespacesOp) -> tuple[str, list[Any]]:
    conditions = ["TRUE"]
    params: list[Any] = []
    literal_prefix: tuple[str, ...] = ()
    for condition in _validate_conditions(op.match_conditions):
        path = condition.path
        if not path:
            continue
        conditions.append("cardinality(ns) >= %s")
        params.append(len(path))
        for j, label in enumerate(path):
            if label == "*":
                continue
            if condition.match_type == "prefix":
                conditions.append("ns[%s] = %s")
                params += [j + 1, label]
            else:
                conditions.append("ns[cardinality(ns) - %s] = %s")
                params += [len(path) - 1 - j, label]
        if condition.match_type == "prefix" and not literal_prefix:
            literal_prefix = tuple(path[: path.index("*")] if "*" in path else path)
    where_ns, ns_params = ns.prefix_condition("prefix", literal_prefix)
    truncated = "ns" if op.max_depth is None else "ns[1:%s]"
    depth_params = [] if op.max_depth is None else [op.max_depth]
    sql = f"""
SELECT DISTINCT {truncated} COLLATE "C" AS namespace FROM (
    SELECT string_to_array(prefix, '.') AS ns FROM {ITEMS}
    WHERE {where_ns} AND {_NOT_EXPIRED.format(a=ITEMS)}
) s
WHERE {" AND ".join(conditions)}
ORDER BY namespace LIMIT %s OFFSET %s"""
    return sql, [*depth_params, *ns_params, *params, op.limit, op.offset]


# ---------------------------------------------------------------- the batch


def _item(row: Sequence[Any]) -> Item:
    prefix, key, value, created_at, updated_at = row[:5]
    return Item(
        value=value, key=key, namespace=ns.from_text(prefix), created_at=created_at, updated_at=updated_at
    )


def _search_item(row: Sequence[Any]) -> SearchItem:
    prefix, key, value, created_at, updated_at, score = row
    return SearchItem(
        namespace=ns.from_text(prefix),
        key=key,
        value=value,
        created_at=created_at,
        updated_at=updated_at,
        score=None if score is None else float(score),
    )


def _write_statements(
    deletes: list[PutOp],
    upserts: list[PutOp],
    embedded: list[tuple[str, str, str, str]],
    vectors: list[Vector],
    *,
    replace_vectors: bool,
) -> list[tuple[str, list[Any]]]:
    """Delete, upsert, and replace the vectors of the upserted items (an item keeps only the
    vectors of its latest put)."""
    statements: list[tuple[str, list[Any]]] = []
    if deletes:
        statements.append(
            (
                f"DELETE FROM {ITEMS} i USING unnest(%s::text[], %s::text[]) AS d(prefix, key) "
                "WHERE i.prefix = d.prefix AND i.key = d.key",
                [[ns.to_text(tuple(op.namespace)) for op in deletes], [op.key for op in deletes]],
            )
        )
    if upserts:
        statements.append(
            (
                f"""
INSERT INTO {ITEMS} AS i (prefix, key, value, ttl_minutes, expires_at)
SELECT u.prefix, u.key, u.value::jsonb, u.ttl, now() + u.ttl * interval '1 minute'
FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[]) AS u(prefix, key, value, ttl)
ON CONFLICT (prefix, key) DO UPDATE SET
    value = excluded.value, updated_at = now(),
    ttl_minutes = excluded.ttl_minutes, expires_at = excluded.expires_at""",
                [
                    [ns.to_text(tuple(op.namespace)) for op in upserts],
                    [op.key for op in upserts],
                    [_json_value(op) for op in upserts],
                    [_ttl(op) for op in upserts],
                ],
            )
        )
    if replace_vectors and upserts:
        statements.append(
            (
                f"DELETE FROM {VECTORS} v USING unnest(%s::text[], %s::text[]) AS d(prefix, key) "
                "WHERE v.prefix = d.prefix AND v.key = d.key",
                [[ns.to_text(tuple(op.namespace)) for op in upserts], [op.key for op in upserts]],
            )
        )
    if embedded:
        statements.append(
            (
                f"INSERT INTO {VECTORS} (prefix, key, field, embedding) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %b::vector[]) "
                "ON CONFLICT (prefix, key, field) DO UPDATE SET embedding = excluded.embedding",
                [
                    [e[0] for e in embedded],
                    [e[1] for e in embedded],
                    [e[2] for e in embedded],
                    vectors,
                ],
            )
        )
    return statements


def batch_steps(settings: Settings, ops: Sequence[Op]) -> Generator[Step, Any, list[Result]]:
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
        queries = list(dict.fromkeys(_strip_mode(op.query) for _, op in searches if op.query))
        if queries:
            raw = yield EmbedRequest(queries, "queries")
            query_vectors = dict(
                zip(queries, to_vectors(raw, len(queries), index.dims, "query"), strict=True)
            )

    gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
    if gets:
        rows = yield _get_sql([op for _, op in gets])
        found = {(ns.from_text(row[0]), row[1]): _item(row) for row in rows}
        for i, op in gets:
            results[i] = found.get((tuple(op.namespace), op.key))
    for i, op in searches:
        vector = query_vectors.get(_strip_mode(op.query)) if op.query else None
        rows = yield search_sql(op, settings, vector)
        results[i] = [_search_item(row) for row in rows]
    for i, op in enumerate(ops):
        if isinstance(op, ListNamespacesOp):
            rows = yield list_namespaces_sql(op)
            results[i] = [tuple(row[0]) for row in rows]

    yield from _write_statements(deletes, upserts, embedded, doc_vectors, replace_vectors=bool(index))
    return results


def _is_hybrid(query: str | None) -> bool:
    return (query or "")[: len(HYBRID_PREFIX)].lower() == HYBRID_PREFIX


def _strip_mode(query: str | None) -> str:
    """The query without its "hybrid:" mode prefix."""
    query = query or ""
    return query[len(HYBRID_PREFIX) :] if _is_hybrid(query) else query
