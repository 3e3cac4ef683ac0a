"""The search settings chosen from measurements (docs/memory.md, "Tuning"), in one place.

Every pooled connection of a store gets ``session_settings``: per connection rather than
``SET LOCAL`` per search, which would cost a transaction and another round trip on every search.
"""

from __future__ import annotations

# HNSW build parameters: a sparse graph keeps puts cheap (index insertion is most of a put's cost);
# the full-precision re-ranking of CANDIDATE_FACTOR x limit candidates makes up the recall.
HNSW_M = 12
HNSW_EF_CONSTRUCTION = 32
# Search breadth of the graph walk, per connection: 800 gave recall@10 0.944 at 100,000 x 384 in the
# benchmark, 200 gave 0.914 (see docs/memory.md).
HNSW_EF_SEARCH = 800
# The index is asked for this many times the wanted rows; they are re-ranked by exact distance.
CANDIDATE_FACTOR = 2
# A namespace holding fewer vectors than this is searched exactly (scanned in key order and
# sorted): faster than the graph walk at that size, and exact.
EXACT_SCAN_MAX_VECTORS = 2000
# Filters narrower than the graph walk's candidates: pgvector's iterative scan keeps walking until
# the page is full (relaxed order: the rows are re-ranked anyway). Should it stop short (after
# hnsw.max_scan_tuples), the search falls back to an exact scan, so a page is never short.
ITERATIVE_SCAN = "relaxed_order"


def session_settings(ef_search: int) -> str:
    """SQL run once on every connection of the store's pools.

    ``enable_sort = off`` makes the plan independent of table statistics (a freshly bulk-loaded
    table has none): a vector search can then only be served in index order by the HNSW index, so
    the planner never trades it for a sequential scan and sort on a stale row estimate. Where an
    exact scan is faster the statement itself chooses it at run time (``sql.search_sql``); a
    sort that has no alternative still runs.
    """
    return f"""
SET hnsw.ef_search = {int(ef_search)};
SET enable_sort = off;
DO $$ BEGIN
    PERFORM set_config('hnsw.iterative_scan', '{ITERATIVE_SCAN}', false);
EXCEPTION WHEN OTHERS THEN NULL;
END $$"""
