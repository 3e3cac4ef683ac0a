"""Per-node overhead and ``get_state`` on graphs of other shapes than the other benchmarks', against
LangGraph's PostgresSaver.

    .venv/bin/python benchmarks/graph_shapes.py [--url postgresql://...] [--rounds 5] [--threads 15]
        [--shapes chat,retrieval]

``checkpoint_overhead.py`` measures one graph: a 10-node chain appending to one list. A saver can be
fast there and slow on a state of another shape, so this script runs nine more, each with 10
nodes per invocation and ``--turns`` invocations per thread:

- chat: a chain whose nodes each add an AI message of about 300 characters to ``messages``
  (``add_messages``), after a human message per turn;
- fields: a chain whose nodes each overwrite five small fields, one a dict of 20 keys;
- fan-out: five parallel nodes append to one list, a join and a chain of four write a summary;
- document: a chain whose nodes each rewrite a text of about 20 KB;
- retrieval: a chain whose nodes each replace a list of four retrieved documents (dicts of about
  300 characters), as a retrieval step does;
- subgraph: a chain of four nodes around a subgraph of five, whose nodes each append a note to a
  list it shares with the parent (its checkpoints go to a namespace of their own);
- map-reduce: a planner sends eight topics to a worker node (``Send``), whose results (dicts of about
  300 characters) a reducer follows;
- pydantic: a chain over a pydantic state whose nodes each replace a nested model and slide a
  window of the last 20 log lines;
- growing-dict: a chain whose nodes each add a fact of about 90 characters to a dict, stored whole
  at each step by both savers.

Per shape, each round runs the graph without a checkpointer and then with each saver (ours,
``PostgresSaver``, and ``CommitOnlySaver``, the yardstick that stores nothing and commits one row per
checkpoint, see ``floor_saver.py``), ``durability="sync"``, in an order that alternates between
rounds. Overhead per node = time per node with the saver - time per node without; medians over
``--rounds``. Then ``get_state`` of one finished thread per saver, interleaved: ours, ours with
nothing cached (a process new to the thread) and ``PostgresSaver``, after ``VACUUM ANALYZE``, in
every order in turn (``reads.in_turns``).
Ratios are ours / ``PostgresSaver`` (below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import operator
import random
import statistics
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal, TypedDict

from floor_saver import CommitOnlySaver
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from postgres_databases import databases, start_embedded
from pydantic import BaseModel
from reads import in_turns, settle, timed
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres import PostgresCheckpointer

NODES = 10
SAVERS = ("ours", "theirs", "floor")


class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    turn: int


class Fields(TypedDict, total=False):
    count: int
    label: str
    score: float
    counters: dict[str, int]
    recent: list[int]


class FanOut(TypedDict, total=False):
    results: Annotated[list[str], operator.add]
    summary: str


class Document(TypedDict, total=False):
    text: str
    revision: int


class Retrieval(TypedDict, total=False):
    query: str
    documents: list[dict[str, str]]


class Notes(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]
    stage: str


class MapReduce(TypedDict, total=False):
    topics: list[str]
    results: Annotated[list[dict[str, str]], operator.add]


class Profile(BaseModel):
    name: str
    tags: list[str]
    score: float


class Agent(BaseModel):
    step: int = 0
    profile: Profile | None = None
    log: list[str] = []


class Facts(TypedDict, total=False):
    facts: dict[str, str]


def chain(builder: StateGraph, nodes: list[tuple[str, Any]], first: str = START) -> None:
    previous = first
    for name, node in nodes:
        builder.add_node(name, node)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)


def chat() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def node(state: Chat, i: int) -> Chat:
        text = f"thought {i} of turn {state.get('turn', 0)}: " + "lorem ipsum dolor " * 16
        return {"messages": [AIMessage(content=text)], "turn": state.get("turn", 0)}

    builder = StateGraph(Chat)
    chain(builder, [(f"n{i}", lambda state, i=i: node(state, i)) for i in range(NODES)])
    return builder, lambda turn: {"messages": [HumanMessage(content=f"question {turn}")], "turn": turn}


def fields() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def node(state: Fields, i: int) -> Fields:
        count = state.get("count", 0) + 1
        return {
            "count": count,
            "label": f"node {i}",
            "score": random.random(),
            "counters": {f"k{j}": j * count for j in range(20)},
            "recent": [count] * 10,
        }

    builder = StateGraph(Fields)
    chain(builder, [(f"n{i}", lambda state, i=i: node(state, i)) for i in range(NODES)])
    return builder, lambda turn: {"count": turn * NODES}


def fan_out() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    workers = 5
    builder = StateGraph(FanOut)
    for i in range(workers):
        builder.add_node(f"w{i}", lambda state, i=i: {"results": [f"worker {i} found " + "x" * 200]})
        builder.add_edge(START, f"w{i}")
        builder.add_edge(f"w{i}", "join")
    builder.add_node("join", lambda state: {"summary": " ".join(r[:10] for r in state["results"][-workers:])})
    tail = [
        (f"t{i}", lambda state, i=i: {"summary": state["summary"] + f" {i}"})
        for i in range(NODES - workers - 1)
    ]
    chain(builder, tail, first="join")
    return builder, lambda turn: {"results": []}


def document() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def node(state: Document, i: int) -> Document:
        text = (state.get("text") or "")[-19_000:] + f" edit {i} " + "y" * 1000
        return {"text": text, "revision": state.get("revision", 0) + 1}

    builder = StateGraph(Document)
    chain(builder, [(f"n{i}", lambda state, i=i: node(state, i)) for i in range(NODES)])
    return builder, lambda turn: {"text": f"draft {turn}"}


def retrieval() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def node(state: Retrieval, i: int) -> Retrieval:
        query = f"{state.get('query', '')} {i}"[-200:]
        found = [{"id": f"{query}/{n}", "text": f"passage {n} for {query}: " + "z" * 280} for n in range(4)]
        return {"query": query, "documents": found}

    builder = StateGraph(Retrieval)
    chain(builder, [(f"n{i}", lambda state, i=i: node(state, i)) for i in range(NODES)])
    return builder, lambda turn: {"query": f"question {turn}"}


def subgraph() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def note(state: Notes, where: str) -> Notes:
        return {"notes": [f"{where} after {len(state['notes'])} notes: " + "n" * 120], "stage": where}

    inner = StateGraph(Notes)
    chain(inner, [(f"s{i}", lambda state, i=i: note(state, f"inner {i}")) for i in range(5)])
    nodes = [(f"p{i}", lambda state, i=i: note(state, f"outer {i}")) for i in range(4)]
    builder = StateGraph(Notes)
    chain(builder, [*nodes[:2], ("sub", inner.compile()), *nodes[2:]])
    return builder, lambda turn: {"notes": [f"question {turn}"]}


def map_reduce() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def plan(state: MapReduce) -> MapReduce:
        return {"topics": [f"topic {len(state['results'])}-{j}" for j in range(8)]}

    def work(state: dict[str, str]) -> MapReduce:
        return {"results": [{"topic": state["topic"], "text": f"about {state['topic']}: " + "r" * 280}]}

    builder = StateGraph(MapReduce)
    builder.add_node("plan", plan)
    builder.add_node("work", work)
    builder.add_node("reduce", lambda state: {"topics": []})
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", lambda state: [Send("work", {"topic": t}) for t in state["topics"]])
    builder.add_edge("work", "reduce")
    builder.add_edge("reduce", END)
    return builder, lambda turn: {"results": []}


def pydantic_state() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def node(state: Agent, i: int) -> dict[str, Any]:
        profile = Profile(name=f"user {state.step}", tags=[f"tag {j}" for j in range(8)], score=i / 3)
        log = [*state.log[-19:], f"node {i} " + "l" * 60]
        return {"step": state.step + 1, "profile": profile, "log": log}

    builder = StateGraph(Agent)
    chain(builder, [(f"n{i}", lambda state, i=i: node(state, i)) for i in range(NODES)])
    return builder, lambda turn: {"step": turn * NODES}


def growing_dict() -> tuple[StateGraph, Callable[[int], dict[str, Any]]]:
    def node(state: Facts) -> Facts:
        facts = dict(state.get("facts") or {})
        facts[f"fact {len(facts)}"] = f"learned at step {len(facts)}: " + "f" * 60
        return {"facts": facts}

    builder = StateGraph(Facts)
    chain(builder, [(f"n{i}", node) for i in range(NODES)])
    return builder, lambda turn: {}


SHAPES = {
    "chat": chat,
    "fields": fields,
    "fan-out": fan_out,
    "document": document,
    "retrieval": retrieval,
    "subgraph": subgraph,
    "map-reduce": map_reduce,
    "pydantic": pydantic_state,
    "growing-dict": growing_dict,
}


@dataclass
class Shape:
    name: str
    builder: StateGraph
    input: Callable[[int], dict[str, Any]]


def run(graph: CompiledStateGraph, shape: Shape, threads: int, turns: int) -> tuple[float, RunnableConfig]:
    """Seconds per node over ``threads`` new threads of ``turns`` invocations, and the last thread."""
    durability: Literal["sync"] | None = "sync" if graph.checkpointer else None
    thread: RunnableConfig = {}
    started = time.perf_counter()
    for _ in range(threads):
        thread = {"configurable": {"thread_id": f"{shape.name}-{uuid.uuid4().hex}"}}
        for turn in range(turns):
            graph.invoke(shape.input(turn), thread, durability=durability)
    return (time.perf_counter() - started) / (threads * turns * NODES), thread


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--url", help="Postgres admin URL (default: an embedded server in a temp dir)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per shape (default 5)")
    parser.add_argument("--threads", type=int, default=15, help="threads per run (default 15)")
    parser.add_argument("--turns", type=int, default=5, help="invocations per thread (default 5)")
    parser.add_argument("--reads", type=int, default=300, help="get_state timings per saver (default 300)")
    parser.add_argument(
        "--shapes", default=",".join(SHAPES), help="comma-separated shapes to run (default: all nine)"
    )
    args = parser.parse_args()
    names = args.shapes.split(",")
    if unknown := sorted(set(names) - set(SHAPES)):
        parser.error(f"unknown shapes {unknown}; the shapes are {', '.join(SHAPES)}")
    shapes = {name: SHAPES[name] for name in names}
    console = Console()

    admin = args.url or start_embedded()
    overhead = Table(title='per-node overhead, durability="sync", median (µs)')
    for column in ("shape", *SAVERS, "ours / theirs", "floor / theirs", "rounds ours / theirs"):
        overhead.add_column(column, justify="left" if column == "shape" else "right")
    reads = Table(title="get_state of a finished thread, median (ms)")
    for column in (
        "shape",
        "ours",
        "ours, nothing cached",
        "theirs",
        "ours / theirs",
        "nothing cached / theirs",
    ):
        reads.add_column(column, justify="left" if column == "shape" else "right")

    with ExitStack() as stack:
        urls = stack.enter_context(databases(admin, list(SAVERS)))
        theirs = stack.enter_context(PostgresSaver.from_conn_string(urls["theirs"]))
        theirs.setup()
        floor = CommitOnlySaver(urls["floor"])
        stack.callback(floor.close)
        savers = {
            "ours": stack.enter_context(open_checkpointer(urls["ours"])),
            "theirs": theirs,
            "floor": floor,
        }
        cold = stack.enter_context(PostgresCheckpointer(urls["ours"], item_cache_bytes=0))

        last_threads: dict[tuple[str, str], RunnableConfig] = {}
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("graph shapes", total=len(shapes) * (args.rounds + 1))
            for name, make in shapes.items():
                builder, make_input = make()
                shape = Shape(name, builder, make_input)
                graphs = {saver: builder.compile(checkpointer=savers[saver]) for saver in SAVERS}
                bare = builder.compile()
                for saver in SAVERS:  # warm up: statements prepared, pools grown
                    run(graphs[saver], shape, threads=2, turns=1)
                progress.advance(task)
                samples: dict[str, list[float]] = {saver: [] for saver in SAVERS}
                for r in range(args.rounds):
                    order = SAVERS if r % 2 == 0 else SAVERS[::-1]
                    for saver in order:
                        baseline, _ = run(bare, shape, args.threads, args.turns)
                        seconds, last_threads[name, saver] = run(
                            graphs[saver], shape, args.threads, args.turns
                        )
                        samples[saver].append(seconds - baseline)
                    progress.advance(task)
                us = {saver: statistics.median(samples[saver]) * 1e6 for saver in SAVERS}
                per_round = " ".join(
                    f"{a / b:.2f}" for a, b in zip(samples["ours"], samples["theirs"], strict=True)
                )
                overhead.add_row(
                    name,
                    *(f"{us[saver]:.0f}" for saver in SAVERS),
                    f"{us['ours'] / us['theirs']:.2f}",
                    f"{us['floor'] / us['theirs']:.2f}",
                    per_round,
                )

        settle([urls["ours"], urls["theirs"]])
        readers = {"ours": savers["ours"], "cold": cold, "theirs": theirs}
        for name, make in shapes.items():
            builder, _ = make()
            getters = {
                reader: partial(
                    builder.compile(checkpointer=saver).get_state,
                    last_threads[name, "theirs" if reader == "theirs" else "ours"],
                )
                for reader, saver in readers.items()
            }
            for get in getters.values():
                get()
            times: dict[str, list[float]] = {reader: [] for reader in readers}
            for round_ in range(args.reads):
                for reader in in_turns(list(getters), round_):
                    times[reader].append(timed(getters[reader]))
            ms = {reader: statistics.median(times[reader]) for reader in readers}
            reads.add_row(
                name,
                *(f"{ms[reader]:.2f}" for reader in readers),
                f"{ms['ours'] / ms['theirs']:.2f}",
                f"{ms['cold'] / ms['theirs']:.2f}",
            )
    console.print(overhead)
    console.print(reads)


if __name__ == "__main__":
    main()
