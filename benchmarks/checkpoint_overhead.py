"""Per-node checkpoint overhead: durable-graph's checkpointers against LangGraph's own.

    .venv/bin/python benchmarks/checkpoint_overhead.py [--url postgresql://...] [--threads 20] ...

One graph of 10 chained nodes with a few KB of state and a list channel every node appends to is
run without a checkpointer (the baseline) and with each checkpointer: ours (Postgres, SQLite,
memory) and LangGraph's (PostgresSaver, SqliteSaver, InMemorySaver), with ``durability="sync"``
(each checkpoint committed before the next node) and with the default durability ("async":
saved in the background while the next node runs). Each thread is invoked ``--turns`` times, so
the list grows as a conversation would. Postgres savers use separate databases on one server:
``--url`` (an admin URL that may create databases), else an embedded server in a temporary dir.

Overhead per node = (time per node with the checkpointer) - (time per node without, measured just
before). For Postgres, a third saver is measured as a yardstick: ``CommitOnlySaver``
(``floor_saver.py``) stores nothing and commits one row per checkpoint, the least any saver that
makes each checkpoint durable in that server costs, and ours again with each thread run under its
``thread_lease`` ("leased"), so every write is fenced, as the CLI and Temporal workers run threads.
Every configuration is measured ``--rounds``
times and the median is reported, with the range. The memory rows compare two nearly identical
savers and so show the noise level.
"""

from __future__ import annotations

import argparse
import operator
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from floor_saver import CommitOnlySaver
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from postgres_databases import databases, start_embedded
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from durable_graph.checkpointers import open_checkpointer
from durable_graph.leases import thread_lease

NODES = 10
BACKENDS = ("postgres", "sqlite", "memory")
DURABILITIES: tuple[Literal["sync", "async"], ...] = ("sync", "async")


class State(TypedDict, total=False):
    brief: str
    items: Annotated[list[dict[str, Any]], operator.add]
    step: int


def build_graph(checkpointer: Any, item_bytes: int) -> CompiledStateGraph:
    builder = StateGraph(State)
    previous = START
    for i in range(NODES):

        def node(state: State, i: int = i) -> State:
            step = state.get("step", 0) + 1
            text = (f"node {i} step {step} " * (item_bytes // 12 + 1))[:item_bytes]
            return {"items": [{"node": i, "step": step, "text": text}], "step": step}

        builder.add_node(f"n{i}", node)
        builder.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


@dataclass(frozen=True)
class Config:
    backend: str  # "none", "postgres", "sqlite", "memory"
    impl: str  # "ours", "theirs", or for Postgres "leased" (ours, fenced) and "floor" (CommitOnlySaver)
    durability: Literal["sync", "async"] | None


def open_savers(stack: ExitStack, pg_urls: dict[str, str], work_dir: Path, backends: list[str]) -> dict:
    savers: dict[tuple[str, str], Any] = {}
    if "postgres" in backends:
        savers["postgres", "ours"] = stack.enter_context(open_checkpointer(pg_urls["ours"]))
        savers["postgres", "leased"] = savers["postgres", "ours"]
        theirs = stack.enter_context(PostgresSaver.from_conn_string(pg_urls["theirs"]))
        theirs.setup()
        savers["postgres", "theirs"] = theirs
        floor = CommitOnlySaver(pg_urls["floor"])
        stack.callback(floor.close)
        savers["postgres", "floor"] = floor
    if "sqlite" in backends:
        savers["sqlite", "ours"] = stack.enter_context(open_checkpointer(f"sqlite:///{work_dir / 'ours.db'}"))
        conn = sqlite3.connect(work_dir / "theirs.db", check_same_thread=False)
        stack.callback(conn.close)
        savers["sqlite", "theirs"] = SqliteSaver(conn)
    if "memory" in backends:
        savers["memory", "ours"] = stack.enter_context(open_checkpointer("memory://"))
        savers["memory", "theirs"] = InMemorySaver()
    return savers


def run_config(graph: CompiledStateGraph, config: Config, args: argparse.Namespace, tag: str) -> float:
    """Seconds per node over ``--threads`` threads of ``--turns`` invocations each."""
    brief = "b" * (args.state_kb * 1024)
    # "async" is LangGraph's default durability; without a checkpointer it does not apply.
    durability: Literal["sync", "async"] | None = None if config.backend == "none" else config.durability
    started = time.perf_counter()
    for t in range(args.threads):
        thread: RunnableConfig = {"configurable": {"thread_id": f"{tag}-{t}"}}
        with thread_lease(graph.checkpointer, f"{tag}-{t}") if config.impl == "leased" else nullcontext():
            for turn in range(args.turns):
                graph.invoke({"brief": brief, "step": turn * NODES}, thread, durability=durability)
    return (time.perf_counter() - started) / (args.threads * args.turns * NODES)


def measure(args: argparse.Namespace, savers: dict, console: Console) -> dict[Config, list[float]]:
    """Overhead per node of every configuration, one sample per round.

    The savers of one backend and durability (ours, theirs, and for Postgres the floor) run back to
    back, in an order that alternates between rounds, right after a baseline run, so a slow patch
    of the shared machine hits them alike.
    """
    none = Config("none", "none", None)
    groups = [
        tuple(
            Config(backend, impl, durability)
            for impl in ("ours", "leased", "theirs", "floor")
            if (backend, impl) in savers
        )
        for backend in BACKENDS
        if (backend, "ours") in savers
        for durability in DURABILITIES
    ]
    graphs: dict[Config, CompiledStateGraph] = {none: build_graph(None, args.item_bytes)}
    for group in groups:
        for c in group:
            graphs[c] = build_graph(savers[c.backend, c.impl], args.item_bytes)
    warmup = argparse.Namespace(**{**vars(args), "threads": 1, "turns": 1})
    for c, graph in graphs.items():  # connections, prepared statements, imports
        run_config(graph, c, warmup, "warmup")
    samples: dict[Config, list[float]] = {c: [] for c in graphs if c != none}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=args.rounds * len(groups))
        for r in range(args.rounds):
            for group in groups:
                progress.update(
                    task, description=f"round {r + 1}/{args.rounds}: {group[0].backend} {group[0].durability}"
                )
                base = run_config(graphs[none], none, args, f"r{r}-{uuid.uuid4().hex[:6]}")
                for c in group if r % 2 == 0 else reversed(group):
                    samples[c].append(run_config(graphs[c], c, args, f"r{r}-{uuid.uuid4().hex[:6]}") - base)
                progress.advance(task)
    return samples


def report(samples: dict[Config, list[float]], args: argparse.Namespace, console: Console) -> None:
    def us(seconds: float) -> str:
        return f"{seconds * 1e6:,.0f}"

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if a > 0 and b > 0 else "n/a (≈ 0)"

    table = Table(
        title=f"checkpoint overhead per node, µs (median of {args.rounds} rounds; "
        f"{args.threads} threads x {args.turns} turns x {NODES} nodes per round)"
    )
    columns = ("backend", "durability", "ours", "theirs", "ours / theirs", "ours range", "theirs range")
    for column in (*columns, "leased", "leased / theirs", "floor", "floor / theirs"):
        table.add_column(column, justify="left" if column in ("backend", "durability") else "right")
    for c in samples:
        if c.impl != "ours":
            continue
        ours = samples[c]
        theirs = samples[Config(c.backend, "theirs", c.durability)]
        floor = samples.get(Config(c.backend, "floor", c.durability))
        leased = samples.get(Config(c.backend, "leased", c.durability))
        o, t = statistics.median(ours), statistics.median(theirs)
        f = statistics.median(floor) if floor else None
        lease = statistics.median(leased) if leased else None
        table.add_row(
            c.backend,
            str(c.durability),
            us(o),
            us(t),
            ratio(o, t),
            f"{us(min(ours))}..{us(max(ours))}",
            f"{us(min(theirs))}..{us(max(theirs))}",
            us(lease) if lease is not None else "",
            ratio(lease, t) if lease is not None else "",
            us(f) if f is not None else "",
            ratio(f, t) if f is not None else "",
        )
    console.print(table)
    if any(c.impl == "floor" for c in samples):
        console.print(
            "floor: CommitOnlySaver (benchmarks/floor_saver.py) stores nothing and commits one row per "
            "checkpoint; what any saver that makes each checkpoint durable in this Postgres costs at least"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="Postgres admin URL (default: an embedded server in a temp dir)")
    parser.add_argument("--threads", type=int, default=10, help="threads per measurement (default 10)")
    parser.add_argument("--turns", type=int, default=3, help="invocations per thread (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, median and range reported (default 3)")
    parser.add_argument("--state-kb", type=int, default=4, help="KB of text in the state (default 4)")
    parser.add_argument("--item-bytes", type=int, default=200, help="bytes each node appends (default 200)")
    parser.add_argument(
        "--backends", default="postgres,sqlite,memory", help="comma-separated subset (default: all three)"
    )
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown or not backends:
        parser.error(
            f"--backends takes postgres, sqlite and memory, not {', '.join(sorted(unknown)) or 'nothing'}"
        )
    console = Console(width=None if sys.stdout.isatty() else 140)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="dg-bench-") as work:
        pg_urls: dict[str, str] = {}
        if "postgres" in backends:
            admin = args.url or start_embedded()
            pg_urls = stack.enter_context(databases(admin, ["ours", "theirs", "floor"]))
        savers = open_savers(stack, pg_urls, Path(work), backends)
        samples = measure(args, savers, console)
    report(samples, args, console)


if __name__ == "__main__":
    main()
