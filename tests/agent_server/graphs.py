"""A graph for the server tests whose runs last as long as the test wants: ``first -> slow -> last``.

Every node appends to ``log``, so a node that ran twice shows twice. ``slow`` waits until the file
named by ``gate`` exists (no gate: it does not wait), so a test holds a run in the middle and lets
it go when it likes.
"""

from __future__ import annotations

import asyncio
import operator
import os
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class SlowState(TypedDict, total=False):
    tag: str
    gate: str
    log: Annotated[list[str], operator.add]


def first(state: SlowState) -> dict[str, Any]:
    return {"log": [f"first:{state['tag']}"]}


async def slow(state: SlowState) -> dict[str, Any]:
    gate = state.get("gate")
    # The file check runs off the event loop, where the server refuses blocking calls.
    while gate and not await asyncio.to_thread(os.path.exists, gate):
        await asyncio.sleep(0.05)
    return {"log": [f"slow:{state['tag']}"]}


def last(state: SlowState) -> dict[str, Any]:
    return {"log": [f"last:{state['tag']}"]}


builder = StateGraph(SlowState)
builder.add_node("first", first)
builder.add_node("slow", slow)
builder.add_node("last", last)
builder.add_edge(START, "first")
builder.add_edge("first", "slow")
builder.add_edge("slow", "last")
builder.add_edge("last", END)
slow_graph = builder
