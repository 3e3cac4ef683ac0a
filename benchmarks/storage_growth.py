"""Bytes on disk for a thread whose message list grows: durable-graph vs LangGraph's PostgresSaver.

    .venv/bin/python benchmarks/storage_growth.py [--url postgresql://admin@host/db] [--steps 200]
        [--message-bytes 1000]

One thread runs ``--steps`` steps; each step adds one LangChain message of about
``--message-bytes`` bytes of varied text (``add_messages``). Each saver writes to its own
database on one server: ``--url`` (an admin URL that may create databases), else an embedded
server in a temporary dir. The size is ``pg_total_relation_size`` (heap, TOAST and indexes)
summed over each saver's tables.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any, TypedDict

import psycopg
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from postgres_databases import databases, start_embedded
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.checkpointers.postgres.schema import TABLES

LANGGRAPH_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations")
# Common English words plus some technical ones: text about as compressible as chat prose.
WORDS = """
the of and to a in is it you that he was for on are with as his they be at one have this from or
had by hot word but what some we can out other were all there when up use your how said an each
she which do their time if will way about many then them write would like so these her long make
thing see him two has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move
right boy old too same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men change went light
kind off need house picture try us again animal point mother world near build self earth father
checkpoint thread resume durable graph node state message agent tool plan evaluate memory vector
postgres latency retry worker activity deterministic replay commit snapshot index query schema
"""
VOCABULARY = WORDS.split()


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def varied_text(seed: int, size: int) -> str:
    """About ``size`` characters of words, as text compresses (zlib takes a 1 KB message to about
    60%), unlike a repeated character."""
    rng = random.Random(seed)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(VOCABULARY) + (str(rng.randrange(100)) if rng.random() < 0.05 else ""))
    return " ".join(words)[:size]


def message(step: int, size: int) -> AnyMessage:
    text = varied_text(step, size)
    return HumanMessage(text) if step % 2 == 0 else AIMessage(text)


def build_graph(checkpointer: Any, steps: int, size: int, advance: Callable[[], None]) -> Any:
    def speak(state: Chat) -> Chat:
        advance()
        return {"messages": [message(len(state["messages"]), size)]}

    builder = StateGraph(Chat)
    builder.add_node("speak", speak)
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", lambda s: END if len(s["messages"]) >= steps else "speak")
    return builder.compile(checkpointer=checkpointer)


@contextmanager
def ours(url: str) -> Iterator[Any]:
    with PostgresCheckpointer(url) as saver:
        yield saver


@contextmanager
def langgraphs(url: str) -> Iterator[Any]:
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        yield saver


SAVERS: dict[str, tuple[Callable[[str], Any], tuple[str, ...]]] = {
    "durable-graph PostgresCheckpointer": (ours, TABLES),
    "LangGraph PostgresSaver": (langgraphs, LANGGRAPH_TABLES),
}


def total_bytes(url: str, tables: tuple[str, ...]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(to_regclass(t))) FROM unnest(%s::text[]) AS t", (list(tables),)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="Postgres admin URL (default: an embedded server in a temp dir)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--message-bytes", type=int, default=1000)
    args = parser.parse_args()
    console = Console()
    sizes: dict[str, int] = {}
    admin = args.url or start_embedded()
    with (
        databases(admin, ["ours", "langgraph"]) as by_label,
        Progress(console=console, transient=True) as bar,
    ):
        for (name, (open_saver, tables)), label in zip(SAVERS.items(), ("ours", "langgraph"), strict=True):
            url = by_label[label]
            task = bar.add_task(name, total=args.steps)
            with open_saver(url) as saver:
                graph = build_graph(saver, args.steps, args.message_bytes, partial(bar.advance, task))
                config = {"configurable": {"thread_id": "growing"}, "recursion_limit": args.steps * 3}
                state = graph.invoke({"messages": []}, config)
            assert len(state["messages"]) == args.steps
            sizes[name] = total_bytes(url, tables)

    ours_name, theirs_name = list(SAVERS)
    text = args.steps * args.message_bytes
    table = Table(title=f"one thread, {args.steps} steps, +1 message of ~{args.message_bytes} B per step")
    table.add_column("saver")
    table.add_column("bytes on disk", justify="right")
    table.add_column("x message text", justify="right")
    table.add_column(f"vs {theirs_name}", justify="right")
    for name, size in sizes.items():
        table.add_row(name, f"{size:,}", f"{size / text:.1f}", f"{size / sizes[theirs_name]:.3f}")
    console.print(table)
    console.print(f"ours / theirs = 1/{sizes[theirs_name] / sizes[ours_name]:.1f}")


if __name__ == "__main__":
    main()
