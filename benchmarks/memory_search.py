"""Memory store benchmark: durable-graph's PgVectorStore vs LangGraph's PostgresStore.

For each size (items x dims) both stores get the same items, unit vectors with cluster structure
(numpy, fixed seed), through an embed function that returns the precomputed vectors, in one fresh
database on the same server. PostgresStore runs with its default index config (HNSW on full
vectors, pgvector's m=16, ef_construction=64, ef_search=40); ours with its defaults.

Measured, per size:
- put throughput (each store's batch put, 500 items per batch);
- search latency p50/p95 and recall@10 against exact search (numpy), limit 10: --rounds rounds of
  --queries queries, each query on ours then on theirs (interleaved), after one untimed pass, first
  right after the bulk load ("fresh": no ANALYZE, as an application sees it) and then after VACUUM
  ANALYZE ("settled");
- the same with a filter that 1% of the items match (recall against exact search among them, and
  how many searches came back with fewer than 10 results);
- our store with hybrid=True on the same (vector) queries: the full-text side's cost;
- the recall/latency curve of both stores over ef_search (settled).

    python benchmarks/memory_search.py                          # 20000x64, the quick default
    python benchmarks/memory_search.py --sizes 20000x64,100000x384
    python benchmarks/memory_search.py --url postgresql://user@host:5432/db

Needs numpy and langgraph-checkpoint-postgres (in the dev extra).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.postgres import PostgresStore
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from durable_graph.memory import HNSWConfig, PgVectorStore
from durable_graph.urls import parse_url

NAMESPACE = ("bench", "items")
LIMIT = 10
GROUPS = 100  # the filtered case matches group g0: 1% of the items
PGVECTOR_DEFAULT_EF_SEARCH = 40


def make_vectors(items: int, queries: int, dims: int, clusters: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dims)).astype(np.float32)

    def sample(n: int) -> Any:
        points = centers[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dims)).astype(np.float32)
        return points / np.linalg.norm(points, axis=1, keepdims=True)

    return sample(items), sample(queries)


def lookup_embedder(docs: Any, queries: Any) -> Callable[[Sequence[str]], list[list[float]]]:
    """'doc-17' -> docs[17], 'q-3' -> queries[3]: the stores embed nothing themselves."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            kind, number = text.split("-")
            out.append((docs if kind == "doc" else queries)[int(number)].tolist())
        return out

    return embed


def with_database(url: str, name: str) -> str:
    conninfo = psycopg.conninfo.conninfo_to_dict(url)
    conninfo["dbname"] = name
    return psycopg.conninfo.make_conninfo(**conninfo)  # type: ignore[arg-type]


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    dbname = "dg_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        url = with_database(admin, dbname)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def put_all(store: BaseStore, count: int, batch: int) -> float:
    start = time.perf_counter()
    for first in range(0, count, batch):
        store.batch(
            [
                PutOp(NAMESPACE, str(i), {"text": f"doc-{i}", "n": i, "group": f"g{i % GROUPS}"})
                for i in range(first, min(count, first + batch))
            ]
        )
    return time.perf_counter() - start


def reference_store(stack: ExitStack, url: str, dims: int, embed: Any, ef_search: int | None) -> Any:
    """LangGraph's PostgresStore with its default index config on its own connection;
    ``ef_search`` None leaves pgvector's default (40)."""
    options = {} if ef_search is None else {"options": f"-c hnsw.ef_search={ef_search}"}
    conn = stack.enter_context(
        psycopg.Connection.connect(
            url,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
            **options,  # type: ignore[arg-type]
        )
    )
    return PostgresStore(conn, index={"dims": dims, "embed": embed, "fields": ["text"]})  # type: ignore[arg-type]


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    short: int = 0

    def p(self, q: float) -> float:
        return 1000 * float(np.percentile(np.array(self.seconds), q))

    @property
    def mean_recall(self) -> float:
        return float(np.mean(self.recall))


def interleaved(
    stores: Sequence[BaseStore], queries: int, rounds: int, exact: Any, filter: dict[str, Any] | None
) -> list[Measured]:
    """Each query on every store in turn; ``rounds`` timed passes over the queries, after one untimed
    pass (pools opened, statements prepared, index pages in memory for both stores, whichever of
    them was loaded last)."""
    results = [Measured() for _ in stores]
    for j in range(queries):
        for store in stores:
            store.search(NAMESPACE, query=f"q-{j}", filter=filter, limit=LIMIT)
    for _ in range(rounds):
        for j in range(queries):
            for store, measured in zip(stores, results, strict=True):
                start = time.perf_counter()
                found = store.search(NAMESPACE, query=f"q-{j}", filter=filter, limit=LIMIT)
                measured.seconds.append(time.perf_counter() - start)
                ids = {int(item.key) for item in found}
                measured.recall.append(len(ids & set(exact[j])) / LIMIT)
                measured.short += len(found) < LIMIT
    return results


def exact_top(docs: Any, queries: Any, mask: Any = None) -> list[list[int]]:
    scores = queries @ docs.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    return np.argsort(-scores, axis=1)[:, :LIMIT].tolist()  # type: ignore[no-any-return]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_size(console: Console, args: argparse.Namespace, admin: str, items: int, dims: int) -> None:
    docs, queries = make_vectors(items, args.queries, dims, args.clusters, args.seed)
    embed = lookup_embedder(docs, queries)
    exact = exact_top(docs, queries)
    mask = np.arange(items) % GROUPS == 0
    exact_filtered = exact_top(docs, queries, mask)
    with fresh_database(admin) as url, ExitStack() as stack:
        hnsw = our_hnsw(args)
        ours = PgVectorStore(url, embed=embed, dims=dims, fields=["text"], hnsw=hnsw)
        stack.callback(ours.close)
        hybrid = PgVectorStore(url, embed=embed, dims=dims, fields=["text"], hybrid=True, hnsw=hnsw)
        stack.callback(hybrid.close)
        theirs = reference_store(stack, url, dims, embed, None)
        ours.open()
        theirs.setup()
        ours_put = items / put_all(ours, items, args.batch)
        theirs_put = items / put_all(theirs, items, args.batch)
        table = Table(
            title=f"{items} items x {dims} dims, limit {LIMIT}, {args.rounds} x {args.queries} queries; "
            f"ours m={ours.hnsw.m}, ef_construction={ours.hnsw.ef_construction}, "
            f"ef_search={ours.hnsw.ef_search}"
        )
        for column in (
            "case",
            "ours p50",
            "theirs p50",
            "p50 ratio",
            "ours p95",
            "theirs p95",
            "p95 ratio",
            "ours recall",
            "theirs recall",
            "short ours/theirs",
            "load avg",
        ):
            table.add_column(column, justify="right")
        table.add_row(
            "put items/s",
            f"{ours_put:,.0f}",
            f"{theirs_put:,.0f}",
            ratio(ours_put, theirs_put),
            "",
            "",
            "",
            "",
            "",
            "",
            load_average(),
        )

        def add_comparison(case: str, a: Measured, b: Measured, short: str) -> None:
            table.add_row(
                case,
                f"{a.p(50):.2f}",
                f"{b.p(50):.2f}",
                ratio(a.p(50), b.p(50)),
                f"{a.p(95):.2f}",
                f"{b.p(95):.2f}",
                ratio(a.p(95), b.p(95)),
                f"{a.mean_recall:.3f}",
                f"{b.mean_recall:.3f}",
                short,
                load_average(),
            )

        def measure(case: str, filter: dict[str, Any] | None, truth: list[list[int]]) -> None:
            a, b = interleaved([ours, theirs], args.queries, args.rounds, truth, filter)
            add_comparison(case, a, b, f"{a.short}/{b.short}")

        measure("fresh", None, exact)
        measure("fresh, 1% filter", {"group": "g0"}, exact_filtered)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        measure("settled", None, exact)
        measure("settled, 1% filter", {"group": "g0"}, exact_filtered)
        plain, with_text = interleaved([ours, hybrid], args.queries, 1, exact, None)
        add_comparison("ours hybrid=True vs ours", with_text, plain, "")
        console.print(table)
        if args.sweep:
            curve(console, args, url, dims, embed, exact)


def our_hnsw(args: argparse.Namespace, ef_search: int | None = None) -> HNSWConfig:
    defaults = HNSWConfig()
    return HNSWConfig(
        m=args.m or defaults.m,
        ef_construction=args.ef_construction or defaults.ef_construction,
        ef_search=ef_search or args.ef_search or defaults.ef_search,
    )


def curve(console: Console, args: argparse.Namespace, url: str, dims: int, embed: Any, exact: Any) -> None:
    """Recall and latency of both stores over ef_search (same indexes, no rebuild)."""
    table = Table(title="recall/latency curve over hnsw.ef_search (settled, interleaved)")
    for column in (
        "ef_search",
        "ours p50",
        "ours p95",
        "ours recall",
        "theirs p50",
        "theirs p95",
        "theirs recall",
        "load avg",
    ):
        table.add_column(column, justify="right")
    for ef_search in [int(x) for x in args.sweep.split(",") if x.strip()]:
        with ExitStack() as stack:
            ours = PgVectorStore(url, embed=embed, dims=dims, fields=["text"], hnsw=our_hnsw(args, ef_search))
            stack.callback(ours.close)
            theirs = reference_store(stack, url, dims, embed, ef_search)
            a, b = interleaved([ours, theirs], args.queries, 1, exact, None)
        table.add_row(
            str(ef_search),
            f"{a.p(50):.2f}",
            f"{a.p(95):.2f}",
            f"{a.mean_recall:.3f}",
            f"{b.p(50):.2f}",
            f"{b.p(95):.2f}",
            f"{b.mean_recall:.3f}",
            load_average(),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000x64", help="items x dims, comma-separated (e.g. 100000x384)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500, help="items per batch put")
    parser.add_argument(
        "--sweep", default="10,20,40,100,200,400", help="ef_search values of the curve ('' = none)"
    )
    parser.add_argument("--m", type=int, default=None, help="our HNSW m (default: the store's)")
    parser.add_argument("--ef-construction", type=int, default=None, help="ours (default: the store's)")
    parser.add_argument("--ef-search", type=int, default=None, help="ours (default: the store's)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--url", default=None, help="server URL (default $DURABLE_GRAPH_URL, else embedded://)"
    )
    args = parser.parse_args()
    console = Console(width=160)
    admin = parse_url(args.url).postgres_conninfo()
    for size in args.sizes.split(","):
        items, dims = (int(x) for x in size.lower().split("x"))
        run_size(console, args, admin, items, dims)


if __name__ == "__main__":
    main()
