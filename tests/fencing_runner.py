"""A runner process for the fencing tests: ``python -m tests.fencing_runner URL THREAD WORKDIR MODE``.

It prints ``asking``, takes the thread's lease (``MODE`` ``start``: at once, with the input;
``resume``: waiting for it, then ``invoke(None)``) and runs a three-node graph: ``first`` waits
until ``WORKDIR/gate`` exists, ``second`` calls a durable tool that appends one line to
``WORKDIR/effects``, ``third`` ends. It prints ``leased <epoch>`` and each node's name as it starts,
then ``done``; a lost lease prints ``lease lost`` and exits with 8, like the CLI.
"""

from __future__ import annotations

import operator
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

LEASE_LOST = 8


class State(TypedDict, total=False):
    visited: Annotated[list[str], operator.add]


def build(workdir: Path) -> StateGraph:
    from durable_graph.durable_tools import durable

    @tool
    def record_effect(note: str) -> str:
        """Append one line to the effects file: the side effect that must happen once."""
        with open(workdir / "effects", "a") as f:
            f.write(f"{os.getpid()} {note}\n")
        return "recorded"

    effect = durable(record_effect)

    def first(state: State) -> State:
        print("first", flush=True)
        while not (workdir / "gate").exists():
            time.sleep(0.05)
        return {"visited": ["first"]}

    def second(state: State) -> State:
        print("second", flush=True)
        effect.invoke({"type": "tool_call", "id": "effect-1", "name": "record_effect", "args": {"note": "x"}})
        return {"visited": ["second"]}

    def third(state: State) -> State:
        print("third", flush=True)
        return {"visited": ["third"]}

    graph = StateGraph(State)
    graph.add_node("first", first)
    graph.add_node("second", second)
    graph.add_node("third", third)
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", "third")
    graph.add_edge("third", END)
    return graph


def main(url: str, thread_id: str, workdir: str, mode: str) -> int:
    from durable_graph.checkpointers import open_checkpointer
    from durable_graph.errors import LeaseLostError
    from durable_graph.leases import thread_lease

    config: Any = {"configurable": {"thread_id": thread_id}}
    value = {"visited": []} if mode == "start" else None
    print("asking", flush=True)
    try:
        with open_checkpointer(url) as saver, thread_lease(url, thread_id, wait=mode == "resume") as lease:
            print(f"leased {lease.epoch}", flush=True)
            build(Path(workdir)).compile(checkpointer=saver).invoke(value, config, durability="sync")
    except LeaseLostError as exc:
        print("lease lost", flush=True)
        print(exc, file=sys.stderr)
        return LEASE_LOST
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
