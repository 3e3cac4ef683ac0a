"""An agent-like graph run by turns from two processes on one Postgres database (or one SQLite file)
reads back as the same graph run on LangGraph's own ``InMemorySaver``, whatever the order of the
turns.

The graph uses what agents use: ``add_messages`` with tool calls and ~1 KB tool results (stored
compressed), a plan replaced at every step, a dict of facts that grows, a dict and an earlier
message that a node changes in place, a fan-out with ``Send``, an interrupt waiting for a person,
and a subgraph. Random actions go to either process (each its own checkpointer and item caches, as
two workers): a new turn, a resume, ``update_state`` (with a ``RemoveMessage``), a fork from an
earlier checkpoint of the history, a prune; reads come from either and from a third process that
caches no items. After each action, what the action returned (or the error it raised) and the
thread's state and history must be those of the reference run, values compared serialized. Through
the graph's sync methods, its async ones, and on SQLite; each with every ``durability`` (with
"async" the node changes nothing in place, see ``act``).

Examples: a fifth of ``$DURABLE_GRAPH_PROPERTY_EXAMPLES`` (default 60: 12 examples, a few seconds);
set it to e.g. 1500 locally.
"""

from __future__ import annotations

import asyncio
import operator
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send, interrupt

from durable_graph.checkpointers import open_checkpointer
from tests.test_two_processes import SERDE, closing_loop, open_processes

EXAMPLES = max(1, int(os.environ.get("DURABLE_GRAPH_PROPERTY_EXAMPLES", "60")) // 5)
Durability = Literal["sync", "async", "exit"]


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    notes: Annotated[list[dict[str, Any]], operator.add]
    plan: list[dict[str, Any]]
    facts: dict[str, str]
    turn: int
    in_place: bool  # whether the agent node changes its state in place this turn


class Research(TypedDict, total=False):
    notes: Annotated[list[dict[str, Any]], operator.add]
    turn: int


def research_graph() -> CompiledStateGraph:
    builder = StateGraph(Research)
    builder.add_node("search", lambda s: {"notes": [{"searched": s.get("turn", 0), "text": "s" * 200}]})
    builder.add_node("summarize", lambda s: {"notes": [{"summary": len(s["notes"])}]})
    builder.add_edge(START, "search")
    builder.add_edge("search", "summarize")
    builder.add_edge("summarize", END)
    return builder.compile()


def agent(state: State) -> State:
    turn, messages = state.get("turn", 0), state.get("messages", [])
    facts = state.get("facts")
    # Nodes that change their state in place: a dict, and an earlier message of the list.
    in_place = state.get("in_place", False)
    if in_place and facts is not None and turn % 3 == 0:
        facts["edited in place"] = f"at turn {turn}"
    earlier = [m for m in messages if isinstance(m, AIMessage)]
    if in_place and earlier and turn % 4 == 2:
        earlier[0].content = f"{earlier[0].content} (revised at {turn})"
        earlier[0].tool_calls[0]["args"]["n"] = float(earlier[0].tool_calls[0]["args"]["n"])
    calls = [{"name": "search", "args": {"n": turn, "q": f"q{turn}"}, "id": f"call-{turn}-{len(messages)}"}]
    return {
        "messages": [
            AIMessage(id=f"ai-{turn}-{len(messages)}", content=f"thinking {turn}", tool_calls=calls)
        ],
        "plan": [{"step": i, "text": f"step {i} of turn {turn} " + "p" * 40} for i in range(turn % 4)],
        "facts": {**(facts or {}), f"fact-{len(messages)}": "f" * 60},
    }


def tools(state: State) -> State:
    last = state["messages"][-1]
    results = [
        ToolMessage(
            id=f"tool-{call['id']}", content=f"result {call['id']} " + "r" * 1100, tool_call_id=call["id"]
        )
        for call in last.tool_calls  # type: ignore[attr-defined]
    ]
    return {"messages": results}


def fan_out(state: State) -> list[Send]:
    turn = state.get("turn", 0)
    return [Send("worker", {"turn": turn, "topic": i}) for i in range(turn % 3 + 1)]


def worker(task: dict[str, Any]) -> State:
    return {"notes": [{"topic": task["topic"], "turn": task["turn"], "text": "w" * 120}]}


def review(state: State) -> State:
    turn = state.get("turn", 0)
    if turn % 2:
        answer = interrupt({"question": f"go on after turn {turn}?"})
        return {"notes": [{"answer": answer}]}
    return {}


def agent_graph(checkpointer: Any) -> CompiledStateGraph:
    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_node("worker", worker)
    builder.add_node("review", review)
    builder.add_node("research", research_graph())
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "tools")
    builder.add_conditional_edges("tools", fan_out, ["worker"])
    builder.add_edge("worker", "review")
    builder.add_edge("review", "research")
    builder.add_edge("research", END)
    return builder.compile(checkpointer=checkpointer)


Process = Literal["A", "B"]


@dataclass(frozen=True)
class Turn:
    process: Process


@dataclass(frozen=True)
class Resume:
    process: Process
    answer: str


@dataclass(frozen=True)
class Update:
    process: Process
    remove_first: bool


@dataclass(frozen=True)
class Fork:
    process: Process
    back: int  # how many checkpoints back in the history


@dataclass(frozen=True)
class Prune:
    process: Process


@dataclass(frozen=True)
class Read:
    reader: Literal["A", "B", "new"]


processes = st.sampled_from(["A", "B"])
actions = st.one_of(
    st.builds(Turn, processes),
    st.builds(Turn, processes),
    st.builds(Resume, processes, st.sampled_from(["yes", "no"])),
    st.builds(Resume, processes, st.sampled_from(["yes", "no"])),
    st.builds(Update, processes, st.booleans()),
    st.builds(Fork, processes, st.integers(1, 12)),
    st.builds(Prune, processes),
    st.builds(Read, st.sampled_from(["A", "B", "new"])),
)


def outcome(action: Any) -> Any:
    """What an action returned, values serialized, or the type of the error it raised."""
    try:
        result = action()
    except Exception as exc:
        return ("error", type(exc).__name__)
    if not isinstance(result, dict):
        return None
    if "configurable" in result:  # update_state's config: the new checkpoint's id differs
        return "updated"
    # An interrupt's id is made from ids that differ between the runs: its value is compared.
    asked = [i.value for i in result.pop("__interrupt__", [])]
    return SERDE.dumps_typed(result), asked


def snapshot(graph: Any, config: RunnableConfig) -> Any:
    """The thread's state and history as a person would look at them (ids aside: they differ)."""
    state = graph.get_state(config)
    history = [
        (SERDE.dumps_typed(s.values), s.next, s.metadata.get("step") if s.metadata else None)
        for s in graph.get_state_history(config)
    ]
    return (
        SERDE.dumps_typed(state.values),
        state.next,
        [i.value for i in state.interrupts],
        history,
    )


def act(graph: Any, config: RunnableConfig, action: Any, turn: int, durability: Durability) -> Any:
    # With "async" (LangGraph's default) a checkpoint is saved while the next step runs, so a node
    # that changes its state in place may change what that checkpoint stores, with any checkpointer
    # whose put waits on a database: the node does so only with the other two.
    start = {"turn": turn, "in_place": durability != "async"}
    if isinstance(action, Turn):
        human = HumanMessage(id=f"h-{turn}", content=f"question {turn}")
        return outcome(lambda: graph.invoke({"messages": [human], **start}, config, durability=durability))
    if isinstance(action, Resume):
        return outcome(lambda: graph.invoke(Command(resume=action.answer), config, durability=durability))
    if isinstance(action, Update):
        messages = graph.get_state(config).values.get("messages", [])
        values: dict[str, Any] = {"facts": {"updated": f"by a person at {turn}"}}
        if action.remove_first and messages:
            values["messages"] = [RemoveMessage(id=messages[0].id)]
        return outcome(lambda: graph.update_state(config, values))
    if isinstance(action, Fork):
        history = list(graph.get_state_history(config))
        if not history:
            return "no history"
        earlier = history[min(action.back, len(history) - 1)]
        human = HumanMessage(id=f"h-{turn}", content=f"again from {action.back} back")
        return outcome(
            lambda: graph.invoke({"messages": [human], **start}, earlier.config, durability=durability)
        )
    if isinstance(action, Prune):
        graph.checkpointer.prune([config["configurable"]["thread_id"]], strategy="keep_latest")  # type: ignore[union-attr]
        return "pruned"
    return "read"


class AsyncGraph:
    """A compiled graph driven through its async methods (``ainvoke``, ``aget_state``, ...), each run
    to completion on one event loop: the checkpointer's async paths, with its pending writes riding
    with the next put."""

    def __init__(self, graph: CompiledStateGraph, loop: asyncio.AbstractEventLoop) -> None:
        self.graph, self.run, self.checkpointer = graph, loop.run_until_complete, graph.checkpointer

    def invoke(self, value: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        return self.run(self.graph.ainvoke(value, config, **kwargs))

    def get_state(self, config: RunnableConfig) -> Any:
        return self.run(self.graph.aget_state(config))

    def get_state_history(self, config: RunnableConfig) -> list[Any]:
        async def history() -> list[Any]:
            return [state async for state in self.graph.aget_state_history(config)]

        return self.run(history())

    def update_state(self, config: RunnableConfig, values: dict[str, Any]) -> Any:
        return self.run(self.graph.aupdate_state(config, values))


@pytest.fixture(scope="module", params=["sync", "async", "sqlite"])
def graphs(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        savers = open_processes(stack, request)
        graphs: dict[str, Any] = {name: agent_graph(saver) for name, saver in savers.items()}
        if request.param == "async":
            loop = closing_loop(stack, savers.values())
            graphs = {name: AsyncGraph(graph, loop) for name, graph in graphs.items()}
        yield {**graphs, "reference": agent_graph(stack.enter_context(open_checkpointer("memory://")))}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(st.builds(Turn, processes), min_size=1, max_size=3), more=st.lists(actions, max_size=12)
)
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_turns_from_two_processes_read_back_as_the_reference_run(
    graphs: dict[str, Any], durability: Durability, first: list[Turn], more: list[Any]
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": f"graph-{uuid.uuid4().hex}"}}
    reference = graphs["reference"]
    for turn, action in enumerate(first + more):
        reader = action.reader if isinstance(action, Read) else action.process
        ours = act(graphs[reader], config, action, turn, durability)
        assert ours == act(reference, config, action, turn, durability), action
        assert snapshot(graphs[reader], config) == snapshot(reference, config), action
    for reader in ("A", "B", "new"):
        assert snapshot(graphs[reader], config) == snapshot(reference, config), reader
