"""Many threads at once through ``ainvoke``: durable-graph's Postgres checkpointer vs LangGraph's.

    .venv/bin/python benchmarks/concurrency.py [--url postgresql://admin@host/db] [--threads 50]
        [--turns 4] [--nodes 4] [--pool-size 10] [--rounds 3] [--durability sync|async|exit]
        [--rtt-ms 0]

``--threads`` graph threads run concurrently, each invoked ``--turns`` times, on a graph of
``--nodes`` chained nodes that each append an item to a list channel. Ours is opened with
``open_checkpointer(url)`` (async pool of ``--pool-size``); LangGraph's ``AsyncPostgresSaver`` gets
an ``AsyncConnectionPool`` of the same size. Each saver has its own database on one server:
``--url`` (an admin URL that may create databases), else an embedded server in a temporary dir.
Throughput is checkpoints written (counted in the database) per second of wall time; rounds
alternate between the savers and the median is reported. ``--rtt-ms`` puts a proxy
(``latency_proxy.py``) between the savers and the server that adds that round-trip time, as if
the database were a network hop away. Two yardsticks run beside them: ``CommitOnlySaver``
(``floor_saver.py``: one committed row per checkpoint, nothing stored) and LangGraph's
``InMemorySaver`` (no database: what LangGraph itself reaches on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from typing import Annotated, Any, Literal, TypedDict

import psycopg
from floor_saver import COUNT_SQL as COMMIT_ONLY_COUNT
from floor_saver import CommitOnlySaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from latency_proxy import proxied
from postgres_databases import databases, start_embedded
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    turn: int


def build_graph(checkpointer: Any, nodes: int) -> Any:
    builder = StateGraph(State)
    previous = START
    for i in range(nodes):

        async def step(state: State, i: int = i) -> State:
            return {"items": [f"node {i} of turn {state.get('turn', 0)}: " + "x" * 200]}

        builder.add_node(f"n{i}", step)
        builder.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


Counter = Callable[[], int]
"""How many checkpoints a saver holds now."""


def count_rows(url: str, sql: str) -> Counter:
    def count() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

    return count


@asynccontextmanager
async def ours(url: str, pool_size: int) -> AsyncIterator[tuple[Any, Counter]]:
    from durable_graph.checkpointers.postgres import PostgresCheckpointer

    async with PostgresCheckpointer(url, pool_size=pool_size) as saver:
        yield saver, count_rows(url, "SELECT count(*) FROM dg_checkpoints")


@asynccontextmanager
async def langgraphs(url: str, pool_size: int) -> AsyncIterator[tuple[Any, Counter]]:
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(url, min_size=1, max_size=pool_size, kwargs=kwargs) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await saver.setup()
        yield saver, count_rows(url, "SELECT count(*) FROM checkpoints")


@asynccontextmanager
async def commit_only(url: str, pool_size: int) -> AsyncIterator[tuple[Any, Counter]]:
    async with AsyncConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True}) as pool:
        saver = CommitOnlySaver(url, pool)
        try:
            yield saver, count_rows(url, COMMIT_ONLY_COUNT)
        finally:
            saver.close()


@asynccontextmanager
async def in_memory(url: str, pool_size: int) -> AsyncIterator[tuple[Any, Counter]]:
    saver = InMemorySaver()
    yield saver, lambda: sum(len(ns) for thread in saver.storage.values() for ns in thread.values())


THEIRS = "LangGraph AsyncPostgresSaver"
SAVERS: dict[str, Callable[[str, int], Any]] = {
    "durable-graph PostgresCheckpointer": ours,
    THEIRS: langgraphs,
    "yardstick: commit only (floor_saver.py)": commit_only,
    "yardstick: InMemorySaver, no database": in_memory,
}
DATABASES = dict(zip(SAVERS, ["ours", "langgraph", "floor", None], strict=True))


async def one_round(
    name: str, url: str, args: argparse.Namespace, round_no: int, progress: Progress, task: TaskID
) -> tuple[float, float]:
    """Checkpoints per second for one round of ``args.threads`` concurrent threads, and the CPU time
    this (client) process spent per checkpoint, in µs."""
    async with SAVERS[name](url, args.pool_size) as (saver, count_checkpoints):
        graph = build_graph(saver, args.nodes)
        before = count_checkpoints()
        durability: Literal["sync", "async", "exit"] = args.durability

        async def run_thread(i: int) -> None:
            config = {"configurable": {"thread_id": f"r{round_no}-t{i}"}}
            for turn in range(args.turns):
                await graph.ainvoke({"turn": turn}, config, durability=durability)
                progress.advance(task)

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(run_thread(i) for i in range(args.threads)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        checkpoints = count_checkpoints() - before
        return checkpoints / elapsed, cpu * 1e6 / checkpoints


Rounds = list[tuple[float, float]]
"""Per round: checkpoints per second, client CPU µs per checkpoint."""


async def measure(urls: dict[str, str], args: argparse.Namespace, console: Console) -> dict[str, Rounds]:
    results: dict[str, Rounds] = {name: [] for name in SAVERS}
    with Progress(console=console, transient=True) as progress:
        for round_no in range(args.rounds):
            for name in SAVERS:
                task = progress.add_task(f"round {round_no + 1}: {name}", total=args.threads * args.turns)
                results[name].append(await one_round(name, urls[name], args, round_no, progress, task))
                progress.remove_task(task)
    return results


def report(results: dict[str, Rounds], args: argparse.Namespace, console: Console) -> None:
    baseline = statistics.median(rate for rate, _ in results[THEIRS])
    table = Table(
        title=f"{args.threads} threads at once x {args.turns} turns, {args.nodes} nodes, "
        f"pool size {args.pool_size}, durability={args.durability}, +{args.rtt_ms} ms round trip "
        f"(median of {args.rounds} rounds)"
    )
    table.add_column("saver")
    table.add_column("checkpoints / s", justify="right")
    table.add_column("every round", justify="right")
    table.add_column(f"vs {THEIRS}", justify="right")
    table.add_column("client CPU µs / checkpoint", justify="right")
    for name, rounds in results.items():
        rates = [rate for rate, _ in rounds]
        median = statistics.median(rates)
        cpu = statistics.median(cpu for _, cpu in rounds)
        table.add_row(
            name,
            f"{median:,.0f}",
            " ".join(f"{r:,.0f}" for r in rates),
            f"{median / baseline:.2f}x",
            f"{cpu:,.0f}",
        )
    console.print(table)
    console.print(
        "The yardsticks are not checkpointers: 'commit only' stores nothing and commits one row per "
        "checkpoint on a pool without a lock (the least a durable saver costs); InMemorySaver shows "
        "what LangGraph alone reaches on this machine. On a local socket the client process is the "
        "bottleneck: checkpoints/s is about 1 / its CPU time per checkpoint."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="Postgres admin URL (default: an embedded server in a temp dir)")
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--durability", choices=["sync", "async", "exit"], default="sync")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="added network round trip (ms)")
    args = parser.parse_args()
    console = Console()
    admin = args.url or start_embedded()
    with ExitStack() as stack:
        by_label = stack.enter_context(databases(admin, [label for label in DATABASES.values() if label]))
        urls = {
            name: stack.enter_context(proxied(by_label[label], args.rtt_ms)) if label else ""
            for name, label in DATABASES.items()
        }
        results = asyncio.run(measure(urls, args, console))
    report(results, args, console)


if __name__ == "__main__":
    main()
