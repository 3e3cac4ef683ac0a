"""Small graphs for the Temporal tests. Every node appends its name to a log file when it runs, so the
tests can count executions across worker processes."""

from __future__ import annotations

import operator
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class LogState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    blob: str


def record(log_file: str, entry: str) -> None:
    with open(log_file, "a") as f:
        f.write(entry + "\n")


def read_log(log_file: str | Path) -> list[str]:
    path = Path(log_file)
    return path.read_text().split() if path.exists() else []


def _chain(builder: StateGraph, names: list[str]) -> StateGraph:
    builder.add_edge(START, names[0])
    for a, b in zip(names, names[1:], strict=False):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder


def linear(
    log_file: str,
    nodes: int = 3,
    slow: str | None = None,
    marker: str | None = None,
    sleep: float = 60,
    blob_size: int = 0,
) -> StateGraph:
    """``n0 -> n1 -> ...``. Node ``slow``, the first time it runs, touches ``marker`` and sleeps ``sleep``
    seconds. With ``blob_size``, ``n0`` puts that many bytes into the state."""

    def make(name: str):  # noqa: ANN202
        def node(state: LogState) -> dict[str, Any]:
            record(log_file, name)
            if name == slow and marker and not Path(marker).exists():
                Path(marker).touch()
                time.sleep(sleep)
            update: dict[str, Any] = {"log": [name]}
            if name == "n0" and blob_size:
                update["blob"] = "x" * blob_size
            return update

        return node

    builder = StateGraph(LogState)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        metadata = (
            {"temporal": {"heartbeat_timeout": 2, "retry": {"initial_interval": 0.2}}}
            if name == slow
            else None
        )
        builder.add_node(name, make(name), metadata=metadata)
    return _chain(builder, names)


def flaky(log_file: str, failures: int = 2, attempts: int = 3) -> StateGraph:
    """``start -> flaky -> end``: ``flaky`` raises on its first ``failures`` runs, has ``attempts`` tries."""

    def start(state: LogState) -> dict[str, Any]:
        record(log_file, "start")
        return {"log": ["start"]}

    def flaky_node(state: LogState) -> dict[str, Any]:
        record(log_file, "flaky")
        if read_log(log_file).count("flaky") <= failures:
            raise RuntimeError("flaky node failed on purpose")
        return {"log": ["flaky"]}

    def end(state: LogState) -> dict[str, Any]:
        record(log_file, "end")
        return {"log": ["end"]}

    builder = StateGraph(LogState)
    builder.add_node("start", start)
    retry = {"maximum_attempts": attempts, "initial_interval": 0.1, "maximum_interval": 0.5}
    builder.add_node(
        "flaky", flaky_node, metadata={"temporal": {"start_to_close_timeout": 30, "retry": retry}}
    )
    builder.add_node("end", end)
    return _chain(builder, ["start", "flaky", "end"])


def approval(log_file: str) -> StateGraph:
    """``draft -> ask -> finish``: ``ask`` waits for a human with ``interrupt()``."""

    def draft(state: LogState) -> dict[str, Any]:
        record(log_file, "draft")
        return {"log": ["draft"]}

    def ask(state: LogState) -> dict[str, Any]:
        record(log_file, "ask")
        answer = interrupt({"type": "approval", "message": "ship it?"})
        return {"log": [f"answer:{answer['decision']}"]}

    def finish(state: LogState) -> dict[str, Any]:
        record(log_file, "finish")
        return {"log": ["finish"]}

    builder = StateGraph(LogState)
    builder.add_node("draft", draft)
    builder.add_node("ask", ask)
    builder.add_node("finish", finish)
    return _chain(builder, ["draft", "ask", "finish"])


def not_a_graph() -> str:
    return "nope"


def agent(workdir: str, max_steps: int = 8) -> StateGraph:
    """The project's agent (plan / tool / evaluate) with the offline ScriptedModel and the demo tools."""
    from durable_graph.graphs import ScriptedModel, build_agent, demo_tools

    return build_agent(ScriptedModel(), demo_tools(workdir), max_steps=max_steps)
