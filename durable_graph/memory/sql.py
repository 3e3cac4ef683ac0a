"""The SQL of the memory store: one statement per read, a few per batch of writes.

Each function returns ``(sql, params)``; nothing here touches a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp
from pgvector import Vector

from durable_graph.memory import namespaces as ns
from durable_graph.memory import tuning
from durable_graph.memory.config import Settings
from durable_graph.memory.filters import FilterSQL, filter_sql
from durable_graph.memory.schema import ITEMS, TEXT_SEARCH_CONFIG, VECTORS, index_expression
from durable_graph.memory.validation import checked_conditions, json_value, ttl_minutes

HYBRID_PREFIX = "hybrid:"
RRF_K = 60
_NOT_EXPIRED = "({a}.expires_at IS NULL OR {a}.expires_at > now())"


class Statement(NamedTuple):
    """A search statement. ``plan_each_run``: its best plan depends on its parameter values (how
    common the query's words are, how large the namespace is), so it is sent with its values bound
    in its text and planned for them at every run; other searches run the generic plan of their
    prepared statement (``tuning.session_settings``)."""

    sql: str
    params: list[Any]
    plan_each_run: bool = False


def get_sql(gets: Sequence[GetOp]) -> tuple[str, list[Any]]:
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


def search_filter(filter: Any) -> FilterSQL:
    """``filter`` as a search's statement checks it; its ``contained`` (the JSON object every item
    that passes contains, None without equalities) is what the GIN index of values answers."""
    return filter_sql("i.value", filter)


def _contains(prefix: tuple[str, ...]) -> str:
    """Items under ``prefix`` whose value contains a parameter, as the GIN index of namespace
    prefixes and values answers it."""
    under = "i.prefixes @> ARRAY[%s]::text[] AND " if prefix else ""
    return f"{under}i.value @> %s::jsonb"


def _count_cte(name: str, rows: str, known: bool | None) -> str:
    """Whether ``rows`` number fewer than ``tuning.EXACT_SCAN_MAX_VECTORS``: counted, or as a search
    counted it recently (``scopes``: a parameter then)."""
    if known is not None:
        return f"{name} AS (SELECT %s::bool AS small)"
    return f"""{name} AS (
    SELECT count(*) < {tuning.EXACT_SCAN_MAX_VECTORS} AS small
    FROM (SELECT 1 FROM {rows} LIMIT {tuning.EXACT_SCAN_MAX_VECTORS}) s
)"""


def _vector_ctes(counts: str, exact: str, where: str, where_v: str, dims: int) -> str:
    # Two ways to the nearest vectors, chosen at run time by one-time filters (the branch not taken
    # is never executed): the HNSW index, which finds the candidates by their half-precision
    # vectors; or an exact scan, ordered by the full vectors (which the index cannot serve), when
    # ``exact`` holds (the namespace holds few vectors, or the filter's equalities match few items)
    # or the index walk came back short (a filter narrower than it could reach).
    # Both score and rank by the full vectors; an item with several vectors (several fields)
    # scores by its best one (max pooling). The exact scan reads the items that pass the filter
    # first, then their vectors; OFFSET 0 keeps that order in the generic plan, which otherwise read
    # every vector of the namespace and looked up its item (28 ms instead of 6 for a 1% filter over
    # 20,000 vectors).
    return f"""
{counts}, index_hits AS MATERIALIZED (
    SELECT v.prefix, v.key, v.embedding <#> %b AS distance
    FROM {VECTORS} v JOIN {ITEMS} i ON i.prefix = v.prefix AND i.key = v.key
    WHERE {where_v} AND NOT {exact}
    ORDER BY {index_expression(dims, "v.embedding")} <#> %b::halfvec({int(dims)}) LIMIT %s
), exact_hits AS MATERIALIZED (
    SELECT v.prefix, v.key, v.embedding <#> %b AS distance
    FROM (SELECT i.prefix, i.key FROM {ITEMS} i WHERE {where} OFFSET 0) i
    JOIN {VECTORS} v ON v.prefix = i.prefix AND v.key = i.key
    WHERE {exact} OR (SELECT count(DISTINCT (prefix, key)) FROM index_hits) < %s
    ORDER BY v.embedding <#> %b LIMIT %s
), vector_hits AS (
    SELECT * FROM exact_hits
    UNION ALL
    SELECT * FROM index_hits WHERE NOT EXISTS (SELECT FROM exact_hits)
), vector_ranked AS (
    SELECT prefix, key, -min(distance) AS similarity,
           rank() OVER (ORDER BY min(distance)) AS r,
           row_number() OVER (ORDER BY min(distance), prefix, key) AS ord
    FROM vector_hits GROUP BY prefix, key
)"""


def search_sql(
    op: SearchOp,
    settings: Settings,
    query_vector: Vector | None,
    small: bool | None = None,
    few_matches: bool | None = None,
    checks: FilterSQL | None = None,
) -> Statement:
    """One statement answering ``op``: ranked page, TTL refresh, rows. Each row ends with whether the
    searched namespaces hold few vectors and whether the filter's equalities match few of their
    items (``scopes``; NULL where not counted). ``small`` and ``few_matches`` are those answers when
    known, else the statement counts; ``checks`` is ``search_filter(op.filter)`` when the caller has it."""
    prefix = ns.validate_labels(op.namespace_prefix, what="namespace prefix")
    where_ns, ns_params = ns.prefix_condition("i.prefix", prefix)
    where_ns_v, _ = ns.prefix_condition("v.prefix", prefix)
    if checks is None:
        checks = search_filter(op.filter)
    where_v = f"{where_ns_v} AND {checks.sql} AND {_NOT_EXPIRED.format(a='i')}"
    where_v_params = ns_params + checks.params
    # With equalities in the filter, the items that pass it are read through the GIN index of
    # namespace prefixes and values, which answers both; the index walk looks each candidate's item
    # up by its key instead (its generic plan would otherwise read every item the containment
    # matches once per candidate).
    equal = checks.contained
    contains_params = [*([ns.to_text(prefix)] if prefix else []), equal]
    if equal is None:
        where = f"{where_ns} AND {checks.sql} AND {_NOT_EXPIRED.format(a='i')}"
        where_params = where_v_params
    else:
        where = f"{_contains(prefix)} AND {checks.sql} AND {_NOT_EXPIRED.format(a='i')}"
        where_params = [*contains_params, *checks.params]

    if query_vector is None or settings.index is None:
        ranked = f"""SELECT i.prefix, i.key, NULL::float8 AS score,
           row_number() OVER (ORDER BY i.updated_at DESC, i.prefix, i.key) AS ord
    FROM {ITEMS} i WHERE {where}"""
        return _search_tail(op, "", ranked, where_params, counted=())

    wanted = op.offset + op.limit
    # A filtered walk costs in proportion to the candidates it must find: it takes no spare ones.
    factor = 1 if op.filter else tuning.CANDIDATE_FACTOR
    candidates = factor * wanted * settings.index.vectors_per_item
    counts = _count_cte("scope", f"{VECTORS} v WHERE {where_ns_v}", small)
    params: list[Any] = list(ns_params if small is None else [small])
    counted: tuple[str, ...] = ("scope",)
    if equal is not None:
        counts += ", " + _count_cte("narrow", f"{ITEMS} i WHERE {_contains(prefix)}", few_matches)
        params += contains_params if few_matches is None else [few_matches]
        counted += ("narrow",)
    exact = "(" + " OR ".join(f"(SELECT small FROM {name})" for name in counted) + ")"
    head = _vector_ctes(counts, exact, where, where_v, settings.index.dims) + ","
    params += [
        *[query_vector, *where_v_params, query_vector, candidates],
        *[query_vector, *where_params, wanted, query_vector, candidates],
    ]
    if not (settings.hybrid or is_hybrid(op.query)):
        ranked = "SELECT prefix, key, similarity AS score, ord FROM vector_ranked"
        return _search_tail(op, head, ranked, params, counted=counted)
    head += (
        _text_ctes(where)
        + f""", fused AS (
    SELECT prefix, key, sum(1.0 / ({RRF_K} + r))::float8 AS score
    FROM (SELECT prefix, key, r FROM vector_ranked UNION ALL SELECT prefix, key, r FROM text_ranked) u
    GROUP BY prefix, key
),"""
    )
    params += [strip_mode(op.query), *where_params, *where_params, *where_params, candidates]
    ranked = (
        "SELECT prefix, key, score, row_number() OVER (ORDER BY score DESC, prefix, key) AS ord FROM fused"
    )
    return _search_tail(op, head, ranked, params, counted=counted, plan_each_run=True)


def _search_tail(
    op: SearchOp,
    head: str,
    ranked: str,
    params: list[Any],
    *,
    counted: tuple[str, ...],
    plan_each_run: bool = False,
) -> Statement:
    refresh = (
        f""", refreshed AS (
    UPDATE {ITEMS} i SET expires_at = now() + i.ttl_minutes * interval '1 minute'
    FROM page p WHERE i.prefix = p.prefix AND i.key = p.key AND i.ttl_minutes IS NOT NULL
)"""
        if op.refresh_ttl
        else ""
    )
    answers = ", ".join(
        f"(SELECT small FROM {name})" if name in counted else "NULL::bool" for name in ("scope", "narrow")
    )
    sql = f"""
WITH {head}
ranked AS (
    {ranked}
), page AS (
    SELECT prefix, key, score, ord FROM ranked ORDER BY ord LIMIT %s OFFSET %s
){refresh}
SELECT i.prefix, i.key, i.value, i.created_at, i.updated_at, p.score, {answers}
FROM page p JOIN {ITEMS} i ON i.prefix = p.prefix AND i.key = p.key
ORDER BY p.ord"""
    return Statement(sql, [*params, op.limit, op.offset], plan_each_run)


def list_namespaces_sql(op: ListNamespacesOp) -> tuple[str, list[Any]]:
    conditions = ["TRUE"]
    params: list[Any] = []
    literal_prefix: tuple[str, ...] = ()
    for condition in checked_conditions(op.match_conditions):
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


def write_statements(
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
                    [json_value(op) for op in upserts],
                    [ttl_minutes(op) for op in upserts],
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


def is_hybrid(query: str | None) -> bool:
    return (query or "")[: len(HYBRID_PREFIX)].lower() == HYBRID_PREFIX


def strip_mode(query: str | None) -> str:
    """The query without its "hybrid:" mode prefix."""
    query = query or ""
    return query[len(HYBRID_PREFIX) :] if is_hybrid(query) else query
