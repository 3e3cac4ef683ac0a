"""The search settings chosen from measurements (docs/memory.md, "Tuning"), in one place.

Every pooled connection of a store gets ``session_settings``: per connection rather than
``SET LOCAL`` per search, which would cost a transaction and another round trip on every search.
"""

from __future__ import annotations

# HNSW build parameters. Index insertion is most of a put's cost, and it grows with m (each new
# vector rewrites the neighbour lists of up to 2m others) far more than with ef_construction:
# a graph of few links (m 10) built with a wide search (ef_construction 64) puts 3.1x (384 dims)
# as fast as PostgresStore (pgvector's 16/64 on full vectors) and still finds the true neighbours
# (docs/memory.md).
HNSW_M = 10
HNSW_EF_CONSTRUCTION = 64
# Small vectors are built with a wider search: at 64 dims that graph left a few items out of the
# walk's reach in half the builds (recall@10 0.989-0.999 instead of 1.000), and 96 left none in
# 16 builds, for 10-20% of the put speed; a distance costs little there (docs/memory.md).
SMALL_VECTOR_DIMS = 128
SMALL_VECTOR_EF_CONSTRUCTION = 96
# Search breadth of the graph walk, per connection: at 120, recall@10 0.99-1.00 at 20,000 x 64 and
# 0.89-0.93 at 100,000 x 384 in the benchmark (PostgresStore at its defaults: 0.99-1.00 and
# 0.83-0.88), in less time (docs/memory.md).
HNSW_EF_SEARCH = 120
# Indexes built sparser than the above (earlier versions built 12/32) need a wider walk for their
# recall: 800 was the default they were measured with.
SPARSE_INDEX_EF_SEARCH = 800

# The index is asked for this many times the wanted rows; they are re-ranked by exact distance.
CANDIDATE_FACTOR = 2
# A namespace holding fewer vectors than this is searched exactly (scanned in key order and
# sorted): faster than the graph walk at that size, and exact.
EXACT_SCAN_MAX_VECTORS = 2000
# How long a store reuses what a search counted of a namespace prefix (``scopes``).
SCOPE_SIZE_SECONDS = 60.0
# Filters narrower than the graph walk's candidates: pgvector's iterative scan keeps walking until
# the page is full (relaxed order: the rows are re-ranked anyway). Should it stop short (after
# hnsw.max_scan_tuples), the search falls back to an exact scan, so a page is never short.
ITERATIVE_SCAN = "relaxed_order"


def default_ef_construction(dims: int, m: int = HNSW_M) -> int:
    """The build search breadth for vectors of ``dims`` in a graph of ``m`` links (at least 2m)."""
    wanted = SMALL_VECTOR_EF_CONSTRUCTION if dims <= SMALL_VECTOR_DIMS else HNSW_EF_CONSTRUCTION
    return max(wanted, 2 * m)


def default_ef_search(m: int, ef_construction: int) -> int:
    """The walk breadth for an index built with ``m`` and ``ef_construction``."""
    sparser = m < HNSW_M or ef_construction < HNSW_EF_CONSTRUCTION
    return SPARSE_INDEX_EF_SEARCH if sparser else HNSW_EF_SEARCH


def session_settings(ef_search: int) -> str:
    """SQL run once on every connection of the store's pools.

    ``enable_sort = off`` makes the plan independent of table statistics (a freshly bulk-loaded
    table has none): a vector search can then only be served in index order by the HNSW index, so
    the planner never trades it for a sequential scan and sort on a stale row estimate. Where an
    exact scan is faster the statement itself chooses it at run time (``sql.search_sql``); a
    sort that has no alternative still runs.

    ``plan_cache_mode = force_generic_plan``: a search statement, once prepared (psycopg prepares
    a statement from its fifth run), is planned once per connection instead of at every run.
    Postgres would otherwise keep planning it for each set of parameters, because the generic
    plan's estimates look worse than the custom plans' (they are not: the statement picks its
    path at run time); planning cost about 0.5 ms per search, as much as the search itself.
    """
    return f"""
SET hnsw.ef_search = {int(ef_search)};
SET enable_sort = off;
SET plan_cache_mode = force_generic_plan;
DO $$ BEGIN
    PERFORM set_config('hnsw.iterative_scan', '{ITERATIVE_SCAN}', false);
EXCEPTION WHEN OTHERS THEN NULL;
END $$"""
