"""Memory store benchmark: durable-graph's PgVectorStore vs LangGraph's PostgresStore.

Both stores get the same items, 384-dim unit vectors with cluster structure (numpy, fixed seed),
through an embed function that returns the precomputed vectors, in a fresh database on the same
server, in the same run. Measured: put throughput (each store's batch put), search latency
(p50/p95 over --queries searches, limit 10, run alternately so both see the same machine noise),
and recall@10 against exact search by brute force in numpy.

    python benchmarks/memory_search.py --items 100000
    python benchmarks/memory_search.py --items 20000 --url postgresql://user@host:5432/db

Needs numpy and langgraph-checkpoint-postgres (in the dev extra).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np
import psycopg
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.postgres import PostgresStore
from psycopg.rows import dict_row
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from durable_graph.memory import HNSWConfig, PgVectorStore
from durable_graph.urls import parse_url

NAMESPACE = ("bench", "items")


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


def put_all(store: BaseStore, count: int, batch: int, label: str, progress: Progress) -> float:
    task = progress.add_task(f"put {label}", total=count)
    start = time.perf_counter()
    for first in range(0, count, batch):
        ops = [
            PutOp(NAMESPACE, str(i), {"text": f"doc-{i}", "n": i})
            for i in range(first, min(count, first + batch))
        ]
        store.batch(ops)
        progress.advance(task, len(ops))
    return time.perf_counter() - start


def search_ids(store: BaseStore, j: int) -> tuple[float, list[int]]:
    start = time.perf_counter()
    results = store.search(NAMESPACE, query=f"q-{j}", limit=10)
    return time.perf_counter() - start, [int(r.key) for r in results]


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500, help="items per batch put")
    defaults = HNSWConfig()
    parser.add_argument("--m", type=int, default=defaults.m, help="HNSW m of our store")
    parser.add_argument("--ef-construction", type=int, default=defaults.ef_construction, help="ours")
    parser.add_argument("--ref-m", type=int, default=16, help="HNSW m of PostgresStore (pgvector default)")
    parser.add_argument(
        "--ref-ef-construction", type=int, default=64, help="PostgresStore (pgvector default)"
    )
    parser.add_argument(
        "--ef-search", type=int, default=defaults.ef_search, help="hnsw.ef_search, both stores"
    )
    parser.add_argument(
        "--sweep",
        default="40,200,400,1000",
        help="ef_search values to also measure both stores with ('' = none)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--url", default=None, help="server URL (default $DURABLE_GRAPH_URL, else embedded://)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    console = Console()
    admin = parse_url(args.url).postgres_conninfo()
    dbname = "dg_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = with_database(admin, dbname)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    console.print(f"database {dbname}: {args.items} items, {args.dims} dims, {args.queries} queries")

    docs, queries = make_vectors(args.items, args.queries, args.dims, args.clusters, args.seed)
    embed = lookup_embedder(docs, queries)
    try:
        with ExitStack() as stack:
            ours = PgVectorStore(
                url,
                embed=embed,
                dims=args.dims,
                fields=["text"],
                hnsw=HNSWConfig(m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search),
            )
            ours.open()
            stack.callback(ours.close)
            theirs = reference_store(stack, url, args, embed, args.ef_search)
            theirs.setup()
            run(console, args, docs, queries, ours, theirs)
            if args.sweep:
                sweep(console, args, url, embed, docs, queries)
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def run(console: Console, args: argparse.Namespace, docs: Any, queries: Any, ours: Any, theirs: Any) -> None:
    stores = {"durable-graph PgVectorStore": ours, "LangGraph PostgresStore": theirs}
    put_seconds: dict[str, float] = {}
    with Progress(console=console, transient=False) as progress:
        for label, store in stores.items():
            put_seconds[label] = put_all(store, args.items, args.batch, label, progress)

    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    latencies: dict[str, list[float]] = {label: [] for label in stores}
    recalls: dict[str, list[float]] = {label: [] for label in stores}
    for store in stores.values():  # warm up caches and pools
        for j in range(min(10, args.queries)):
            search_ids(store, j)
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("search (alternating)", total=args.queries)
        for j in range(args.queries):
            for label, store in stores.items():
                seconds, ids = search_ids(store, j)
                latencies[label].append(seconds)
                recalls[label].append(len(set(ids) & set(exact[j].tolist())) / 10)
            progress.advance(task)

    ours_label, theirs_label = list(stores)
    table = Table(
        title=f"{args.items} items x {args.dims} dims, ef_search={args.ef_search}; HNSW m/ef_construction: "
        f"ours {args.m}/{args.ef_construction}, PostgresStore {args.ref_m}/{args.ref_ef_construction}"
    )
    table.add_column("metric")
    table.add_column(ours_label, justify="right")
    table.add_column(theirs_label, justify="right")
    table.add_column("ratio (ours/theirs)", justify="right")

    def row(name: str, a: float, b: float, fmt: str) -> None:
        table.add_row(name, format(a, fmt), format(b, fmt), f"{a / b:.2f}x" if b else "-")

    ours_put, theirs_put = (args.items / put_seconds[k] for k in stores)
    row("put throughput (items/s)", ours_put, theirs_put, ",.0f")
    for p in (50, 95):
        ours_ms, theirs_ms = (1000 * percentile(latencies[k], p) for k in stores)
        row(f"search p{p} (ms)", ours_ms, theirs_ms, ".2f")
    row("recall@10", statistics.fmean(recalls[ours_label]), statistics.fmean(recalls[theirs_label]), ".3f")
    console.print(table)


def reference_store(stack: ExitStack, url: str, args: argparse.Namespace, embed: Any, ef_search: int) -> Any:
    """LangGraph's PostgresStore on its own connection searching with ``ef_search``."""
    conn = stack.enter_context(
        psycopg.Connection.connect(
            url,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,  # type: ignore[arg-type]
            options=f"-c hnsw.ef_search={ef_search}",
        )
    )
    return PostgresStore(
        conn,  # type: ignore[arg-type]
        index={  # type: ignore[arg-type]
            "dims": args.dims,
            "embed": embed,
            "fields": ["text"],
            "distance_type": "cosine",
            "ann_index_config": {
                "kind": "hnsw",
                "m": args.ref_m,
                "ef_construction": args.ref_ef_construction,
            },
        },
    )


def sweep(console: Console, args: argparse.Namespace, url: str, embed: Any, docs: Any, queries: Any) -> None:
    """Recall and latency of both stores at other ef_search values (same indexes, no rebuild)."""
    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    table = Table(
        title=f"both stores at other ef_search values (HNSW m/ef_construction: ours {args.m}/"
        f"{args.ef_construction}, PostgresStore {args.ref_m}/{args.ref_ef_construction})"
    )
    for column in ("ef_search", "ours p50 (ms)", "ours recall@10", "theirs p50 (ms)", "theirs recall@10"):
        table.add_column(column, justify="right")
    for ef_search in [int(x) for x in args.sweep.split(",") if x.strip()]:
        with ExitStack() as stack:
            hnsw = HNSWConfig(m=args.m, ef_construction=args.ef_construction, ef_search=ef_search)
            ours = PgVectorStore(url, embed=embed, dims=args.dims, fields=["text"], hnsw=hnsw)
            stack.callback(ours.close)
            stores = (ours, reference_store(stack, url, args, embed, ef_search))
            for store in stores:
                for j in range(min(10, args.queries)):
                    search_ids(store, j)
            runs: tuple[list[tuple[float, list[int]]], ...] = ([], [])
            for j in range(args.queries):  # alternating, as in the main table
                for store, found in zip(stores, runs, strict=True):
                    found.append(search_ids(store, j))
        cells = [str(ef_search)]
        for found in runs:
            recall = statistics.fmean(
                len(set(ids) & set(exact[j].tolist())) / 10 for j, (_, ids) in enumerate(found)
            )
            cells += [f"{1000 * percentile([seconds for seconds, _ in found], 50):.2f}", f"{recall:.3f}"]
        table.add_row(*cells)
    console.print(table)


if __name__ == "__main__":
    main()
