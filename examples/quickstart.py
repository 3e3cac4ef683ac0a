"""Quickstart: a LangGraph thread that survives a crash and is resumed by its id.

    .venv/bin/python examples/quickstart.py

The graph has three nodes (plan -> research -> report) and is checkpointed after every node to
``$DURABLE_GRAPH_URL``, else the embedded Postgres (``embedded://``). A child process runs the
thread and dies in the middle of ``report``, as a killed worker would. This process then opens the
same database, finds the thread by its id, and finishes it: ``plan`` and ``research`` do not run
again. Try another backend with e.g. ``DURABLE_GRAPH_URL=sqlite:///quickstart.db``.
"""

from __future__ import annotations

import argparse
import operator
import os
import subprocess
import sys
import uuid
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from durable_graph.checkpointers import open_checkpointer
from durable_graph.urls import default_url


class State(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    report: str


RAN_HERE: list[str] = []


def build_graph(checkpointer: Any, *, crash_in: str | None = None) -> CompiledStateGraph:
    def ran(node: str) -> None:
        RAN_HERE.append(node)
        print(f"  [pid {os.getpid()}] running {node}", flush=True)
        if node == crash_in:
            print(f"  [pid {os.getpid()}] crashing in the middle of {node}!", flush=True)
            os._exit(1)  # no cleanup, no goodbye: like a kill -9 or a lost machine

    def plan(state: State) -> State:
        ran("plan")
        return {"notes": [f"plan: find three facts about {state['topic']}"]}

    def research(state: State) -> State:
        ran("research")
        return {"notes": [f"fact {i} about {state['topic']}" for i in (1, 2, 3)]}

    def report(state: State) -> State:
        ran("report")
        return {"report": f"{state['topic']}: " + "; ".join(state["notes"][1:])}

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("research", research)
    builder.add_node("report", report)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "research")
    builder.add_edge("research", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer)


def config_of(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def crashing_run(url: str, thread_id: str) -> None:
    """The child process: start the thread and die inside ``report``."""
    with open_checkpointer(url) as saver:
        graph = build_graph(saver, crash_in="report")
        # "sync": each node's checkpoint is committed before the next node starts. The default
        # ("async") saves in the background and may lose the last steps when the process dies.
        graph.invoke({"topic": "otters"}, config_of(thread_id), durability="sync")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=default_url(), help="backend URL (default: %(default)s)")
    parser.add_argument("--crash-thread", help=argparse.SUPPRESS)  # used by the child process
    args = parser.parse_args()
    if args.crash_thread:
        crashing_run(args.url, args.crash_thread)
        return

    if args.url.startswith("memory:"):
        sys.exit("memory:// lives inside one process; use a database two processes share (sqlite, postgres)")
    thread_id = f"quickstart-{uuid.uuid4().hex[:8]}"
    print(f"checkpointing to {args.url}; thread id {thread_id!r}")
    with open_checkpointer(args.url) as saver:
        print("1. a worker process starts the thread and crashes:")
        child = subprocess.run([sys.executable, __file__, "--url", args.url, "--crash-thread", thread_id])
        print(f"   worker exited with code {child.returncode}")

        graph = build_graph(saver)
        config = config_of(thread_id)
        state = graph.get_state(config)
        print(f"2. this process (pid {os.getpid()}) finds thread {thread_id!r} in the database:")
        print(f"   saved notes: {state.values.get('notes')}")
        print(f"   next node to run: {list(state.next)}")
        if not state.next:
            sys.exit(f"thread {thread_id!r} has nothing to resume: did the worker reach the database?")

        print("3. resuming it by id (input None = continue from the last checkpoint):")
        result = graph.invoke(None, config)
        print(f"   report: {result['report']}")
        steps = len(list(saver.list(config)))
        print(f"4. done: {steps} checkpoints saved; nodes run again by this process: {RAN_HERE}")


if __name__ == "__main__":
    main()
