"""Reads: ``get_state`` and the first entries of ``get_state_history``, against LangGraph's PostgresSaver.

    .venv/bin/python benchmarks/reads.py [--url postgresql://...] [--repeats 30] [--seconds 0.5] [--long 1000]
        [--fresh] [--varied-text]

Four threads are written once through each saver, each on a database of its own on one Postgres
server (``--url``, an admin URL that may create databases; else an embedded server in a temporary
dir):

- a short thread: a 10-step loop with a small state;
- a long thread: a ``--long``-step loop whose list channel grows by one short item per step;
- an agent thread: ``--agent-steps`` steps, each adding an AI message with a tool call and a ~1 KB
  tool message to ``messages`` (``add_messages``), as a tool-calling agent's history grows (the
  tool message is one character repeated; with ``--varied-text``, words, which compress as text);
- a short agent thread: 10 such steps (20 messages).

Then each database is vacuumed and analyzed, as autovacuum does soon after such writes (``--fresh``
reads before that: Postgres then plans ``PostgresSaver``'s reads without statistics, which made its
long threads' reads up to twice as slow).

Our checkpointer keeps the list items it has written or read, as a process that runs or serves
the thread does; "ours, nothing cached" reads our threads through a second checkpointer with that
cache off (``item_cache_bytes=0``), as a process that has not seen the thread before (a CLI call).

Then, interleaved (ours, ours with nothing cached, theirs, ...; every order of the three in turn,
since a read that follows another saver's runs a few percent slower), ``--repeats`` times each, and for a
quick read as many more times as fill about ``--seconds`` per saver (a median of 30 quarter-millisecond
reads moves with the machine more than the savers differ):
``get_state`` of each thread, the long thread's ``get_state_history(limit=10)``, the first 10
entries taken from the saver's ``list()`` (what ``durable-graph history`` and a caller that stops
early read), and its whole history. (LangGraph's ``get_state_history`` drains ``list()`` before
yielding its first entry, so taking entries from it one by one reads the whole history with any
saver: pass ``limit``.)
Medians in ms and the ratio ours / theirs (below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import itertools
import operator
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Annotated, Any, TypedDict

import psycopg
import storage_growth
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from postgres_databases import databases, start_embedded
from rich.console import Console
from rich.table import Table

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres import PostgresCheckpointer


class LoopState(TypedDict, total=False):
    step: int
    until: int
    items: Annotated[list[str], operator.add]
    messages: Annotated[list[AnyMessage], add_messages]


def loop_graph(agent_like: bool, varied_text: bool = False) -> StateGraph:
    """A loop of one node; agent-like, each step adds an AI message with a tool call and a tool
    message of about 1 KB: one character repeated, or with ``varied_text`` words."""

    def tool_result(n: int) -> str:
        return storage_growth.varied_text(n, 1000) if varied_text else f"result {n} " + "x" * 1000

    def step(state: LoopState) -> dict[str, Any]:
        n = state.get("step", 0) + 1
        if not agent_like:
            return {"step": n, "items": [f"item {n}"]}
        call_id = f"call_{n}"
        call = {"name": "search", "args": {"query": f"question {n}"}, "id": call_id}
        return {
            "step": n,
            "messages": [
                AIMessage(content="", tool_calls=[call]),
                ToolMessage(content=tool_result(n), tool_call_id=call_id),
            ],
        }

    def more(state: LoopState) -> str:
        return "step" if state["step"] < state["until"] else END

    graph = StateGraph(LoopState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", more)
    return graph


def write_thread(graph: CompiledStateGraph, steps: int) -> RunnableConfig:
    """Run a new thread of ``steps`` steps; each checkpoint is committed before the next step."""
    config: RunnableConfig = {
        "configurable": {"thread_id": f"reads-{uuid.uuid4().hex}"},
        "recursion_limit": steps + 10,
    }
    # Without a checkpointer there is nothing to make durable (and LangGraph refuses "sync").
    durability = "sync" if graph.checkpointer else None
    graph.invoke({"step": 0, "until": steps}, config, durability=durability)
    return config


def settle(urls: Iterable[str]) -> None:
    """``VACUUM ANALYZE`` each database, as autovacuum does within a minute or so of the writes: until
    then Postgres plans ``PostgresSaver``'s reads without statistics, and a long thread's blobs are
    scanned rather than looked up (its 1,000-step read took twice as long)."""
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def in_turns(names: Sequence[str], round_: int) -> tuple[str, ...]:
    """The order to time ``names`` in at round ``round_``: every order in turn, so that each reads
    right after each of the others as often (a read that follows another saver's runs a few percent
    slower; rotating one order would keep each one's predecessor)."""
    orders = list(itertools.permutations(names))
    return orders[round_ % len(orders)]


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--url", help="Postgres admin URL (default: an embedded server in a temp dir)")
    parser.add_argument(
        "--repeats", type=int, default=30, help="least timings per read and saver (default 30)"
    )
    parser.add_argument(
        "--seconds", type=float, default=0.5, help="timing per read and saver, at least (default 0.5)"
    )
    parser.add_argument("--long", type=int, default=1000, help="steps of the long thread (default 1000)")
    parser.add_argument("--agent-steps", type=int, default=300, help="agent thread steps (default 300)")
    parser.add_argument(
        "--fresh", action="store_true", help="read right after writing, before the databases are analyzed"
    )
    parser.add_argument(
        "--varied-text",
        action="store_true",
        help="agent threads' tool messages of words rather than one character repeated",
    )
    args = parser.parse_args()
    console = Console()

    admin = args.url or start_embedded()
    with ExitStack() as stack:
        urls = stack.enter_context(databases(admin, ["ours", "theirs"]))
        theirs = stack.enter_context(PostgresSaver.from_conn_string(urls["theirs"]))
        theirs.setup()
        savers = {"ours": stack.enter_context(open_checkpointer(urls["ours"])), "theirs": theirs}

        reads: dict[str, dict[str, Callable[[], Any]]] = {}
        threads: dict[str, tuple[RunnableConfig, RunnableConfig, RunnableConfig, RunnableConfig]] = {}
        for name, saver in savers.items():
            loop = loop_graph(agent_like=False).compile(checkpointer=saver)
            agent = loop_graph(agent_like=True, varied_text=args.varied_text).compile(checkpointer=saver)
            with console.status(f"writing the threads through {name}"):
                threads[name] = (
                    write_thread(loop, 10),
                    write_thread(loop, args.long),
                    write_thread(agent, args.agent_steps),
                    write_thread(agent, 10),
                )
        if not args.fresh:
            settle(urls.values())
        cold = stack.enter_context(PostgresCheckpointer(urls["ours"], item_cache_bytes=0))
        savers = {"ours": savers["ours"], "ours, nothing cached": cold, "theirs": theirs}
        threads["ours, nothing cached"] = threads["ours"]
        for name, saver in savers.items():
            loop = loop_graph(agent_like=False).compile(checkpointer=saver)
            agent = loop_graph(agent_like=True, varied_text=args.varied_text).compile(checkpointer=saver)
            short, long, agent_thread, short_agent_thread = threads[name]
            reads[name] = {
                "get_state, 10-step thread": lambda g=loop, c=short: g.get_state(c),
                f"get_state, {args.long}-step thread": lambda g=loop, c=long: g.get_state(c),
                f"get_state, agent thread ({2 * args.agent_steps} messages)": (
                    lambda g=agent, c=agent_thread: g.get_state(c)
                ),
                "get_state, 10-step agent thread (20 messages)": (
                    lambda g=agent, c=short_agent_thread: g.get_state(c)
                ),
                f"get_state_history(limit=10), {args.long}-step thread": (
                    lambda g=loop, c=long: list(g.get_state_history(c, limit=10))
                ),
                f"first 10 of list(), {args.long}-step thread": (
                    lambda s=saver, c=long: list(itertools.islice(s.list(c), 10))
                ),
                f"whole get_state_history, {args.long}-step thread": (
                    lambda g=loop, c=long: list(g.get_state_history(c))
                ),
            }

        samples: dict[tuple[str, str], list[float]] = {}
        for what in reads["ours"]:
            for name in savers:  # warm up: first reads fill caches and prepare statements
                reads[name][what]()
            slowest = max(statistics.median(timed(reads[name][what]) for _ in range(5)) for name in savers)
            rounds = max(args.repeats, int(args.seconds * 1000 / max(slowest, 0.001)))
            for round_ in range(rounds):
                for name in in_turns(list(savers), round_):
                    samples.setdefault((what, name), []).append(timed(reads[name][what]))

    table = Table(title="reads, median (ms)")
    columns = ["read", "timings", *savers, "ours / theirs", "nothing cached / theirs"]
    for column in columns:
        table.add_column(column, justify="left" if column == "read" else "right")
    for what in reads["ours"]:
        ours, cold_ms, their = (statistics.median(samples[what, name]) for name in savers)
        times = (f"{ms:.2f}" for ms in (ours, cold_ms, their))
        timings = str(len(samples[what, "ours"]))
        table.add_row(what, timings, *times, f"{ours / their:.2f}", f"{cold_ms / their:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
