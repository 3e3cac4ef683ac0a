"""Small LangGraph graphs the checkpointer tests run for real."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict, cast

from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from durable_graph.checkpointers.codec import WHOLE_LIST_MAX_BYTES


class ListState(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    count: int


def appending_graph(checkpointer: Any, *, nodes: int = 3, item: str = "x") -> CompiledStateGraph:
    """A chain of ``nodes`` nodes; node ``i`` appends ``f"{item}-{i}-{count}"`` and bumps ``count``."""
    builder = StateGraph(ListState)
    previous = START
    for i in range(nodes):
        name = f"n{i}"

        def step(state: ListState, i: int = i) -> ListState:
            count = state.get("count", 0) + 1
            return {"items": [f"{item}-{i}-{count}"], "count": count}

        builder.add_node(name, step)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


def _extend(state: list[str] | None, batches: Sequence[list[str]]) -> list[str]:
    out = list(state or [])
    for batch in batches:
        out += batch
    return out


class DeltaState(TypedDict, total=False):
    log: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=3)]


def delta_graph(checkpointer: Any) -> CompiledStateGraph:
    """One node that appends to a ``DeltaChannel`` list on every invocation."""
    builder = StateGraph(DeltaState)
    builder.add_node("log", lambda state: {"log": [f"entry-{len(state.get('log') or [])}"]})
    builder.add_edge(START, "log")
    builder.add_edge("log", END)
    return builder.compile(checkpointer=checkpointer)


def item(name: str) -> str:
    """``name`` made long enough that a list of it is stored as items, as a long message list is (a
    Postgres checkpoint row keeps short lists of short strings and numbers, and a list of about
    ``WHOLE_LIST_MAX_BYTES`` or less that replaces another is stored whole, as one value)."""
    return f"{name}: " + "." * WHOLE_LIST_MAX_BYTES


def thread(thread_id: str, **extra: Any) -> RunnableConfig:
    """The config of a thread, plus any other config keys (``metadata=...``)."""
    return cast(RunnableConfig, {"configurable": {"thread_id": thread_id}, **extra})
