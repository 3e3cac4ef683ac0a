"""Tools that run once: a recorded tool result is replayed, not re-run, when a node runs again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException, tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from durable_graph.checkpointers import open_checkpointer
from durable_graph.durable_tools import (
    TOOL_LOG_KEY,
    DurableTool,
    MemoryToolLog,
    durable,
    durable_tool,
    idempotency_key,
    open_tool_log,
)
from tests.chaos import worker
from tests.chaos.worker import LogState, count, effect, run_until


@pytest.fixture(params=["postgres", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_url")
    else:
        yield f"sqlite:///{tmp_path / 'tools.db'}"


def test_node_killed_after_the_tool_gets_the_recorded_result(url: str, tmp_path: Path) -> None:
    run_until("tool", url, "t-after", tmp_path, "tool-done")
    assert count(tmp_path, "bump") == 1 and count(tmp_path, "act") == 0

    final = worker.run("tool", url, "t-after", tmp_path, None)

    assert final["log"] == ["b-1"]  # the recorded result, not "b-2"
    assert count(tmp_path, "bump") == 1
    assert count(tmp_path, "act") == 1
    with open_tool_log(url) as log:
        [record] = log.records("t-after")
        assert (record.tool, record.attempts, record.done) == ("bump", 1, True)
        assert record.key.call_id == "id:call-1"


def test_kill_between_effect_and_record_reruns_the_tool_and_counts_it(url: str, tmp_path: Path) -> None:
    """The honest at-least-once window: the effect happened but its result was never recorded."""
    run_until("inside-tool", url, "t-inside", tmp_path, "effect-done")

    final = worker.run("tool", url, "t-inside", tmp_path, None)

    assert final["log"] == ["b-2"]
    assert count(tmp_path, "bump") == 2
    with open_tool_log(url) as log:
        [record] = log.records("t-inside")
        assert (record.attempts, record.done) == (2, True)


def failing_once_graph(workdir: Path, tools: list[Any], tool_input: Any) -> StateGraph:
    """``act`` calls every tool, then fails the first time it runs."""

    def act(state: LogState) -> LogState:
        outputs = [t.invoke(tool_input) for t in tools]
        if effect(workdir, "act") == 1:
            raise RuntimeError("node failed after its tools ran")
        return {"log": [o.content if isinstance(o, ToolMessage) else str(o) for o in outputs]}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    graph.add_edge("act", END)
    return graph


def counting_tool(workdir: Path, name: str = "bump") -> Any:
    @tool(name)
    def bump(label: str) -> str:
        """Count a call."""
        return f"{label}-{effect(workdir, name)}"

    return bump


CALL = {"type": "tool_call", "id": "c1", "name": "bump", "args": {"label": "x"}}


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_rerun_after_failure_replays_every_backend(backend: str, tmp_path: Path, request: Any) -> None:
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path / 'r.db'}",
        "postgres": request.getfixturevalue("pg_url") if backend == "postgres" else "",
    }[backend]
    config = {"configurable": {"thread_id": f"rerun-{backend}"}}
    with open_checkpointer(url) as saver:
        graph = failing_once_graph(tmp_path, [durable(counting_tool(tmp_path))], CALL).compile(
            checkpointer=saver
        )
        with pytest.raises(RuntimeError, match="node failed"):
            graph.invoke({"log": []}, config)
        assert graph.invoke(None, config)["log"] == ["x-1"]
    assert count(tmp_path, "bump") == 1


async def test_async_graph_replays_recorded_result(tmp_path: Path, pg_url: str) -> None:
    config = {"configurable": {"thread_id": "async-rerun"}}
    bump = durable(counting_tool(tmp_path))

    async def act(state: LogState) -> LogState:
        message = await bump.ainvoke(CALL)
        if effect(tmp_path, "act") == 1:
            raise RuntimeError("node failed after its tools ran")
        return {"log": [message.content]}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    async with open_checkpointer(pg_url) as saver:
        compiled = graph.compile(checkpointer=saver)
        with pytest.raises(RuntimeError):
            await compiled.ainvoke({"log": []}, config)
        assert (await compiled.ainvoke(None, config))["log"] == ["x-1"]
    assert count(tmp_path, "bump") == 1


def test_calls_without_an_id_are_keyed_by_arguments(tmp_path: Path) -> None:
    bump = durable(counting_tool(tmp_path))

    def act(state: LogState) -> LogState:
        first, second, again = bump.invoke({"label": "a"}), bump.invoke({"label": "b"}), bump.invoke("a")
        if effect(tmp_path, "act") == 1:
            raise RuntimeError("fail once")
        return {"log": [first, second, again]}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    config = {"configurable": {"thread_id": "by-args"}}
    with open_checkpointer("memory://") as saver:
        compiled = graph.compile(checkpointer=saver)
        with pytest.raises(RuntimeError):
            compiled.invoke({"log": []}, config)
        # "a" and {"label": "a"} are different inputs, so three keys, each run once.
        assert compiled.invoke(None, config)["log"] == ["a-1", "b-2", "a-3"]
    assert count(tmp_path, "bump") == 3


def test_tool_before_an_interrupt_runs_once(tmp_path: Path) -> None:
    bump = durable(counting_tool(tmp_path))

    def ask(state: LogState) -> LogState:
        message = bump.invoke(CALL)
        answer = interrupt("approve?")
        return {"log": [message.content, answer]}

    graph = StateGraph(LogState)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    config = {"configurable": {"thread_id": "interrupted"}}
    with open_checkpointer(f"sqlite:///{tmp_path / 'i.db'}") as saver:
        compiled = graph.compile(checkpointer=saver)
        compiled.invoke({"log": []}, config)
        assert compiled.invoke(Command(resume="yes"), config)["log"] == ["x-1", "yes"]
    assert count(tmp_path, "bump") == 1


def test_different_threads_and_tasks_do_not_share_results(tmp_path: Path) -> None:
    bump = durable(counting_tool(tmp_path))

    def act(state: LogState) -> LogState:
        return {"log": [bump.invoke(CALL).content]}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    with open_checkpointer("memory://") as saver:
        compiled = graph.compile(checkpointer=saver)
        results = [compiled.invoke({"log": []}, {"configurable": {"thread_id": t}})["log"] for t in "ab"]
        again = compiled.invoke({"log": []}, {"configurable": {"thread_id": "a"}})["log"]
    assert results == [["x-1"], ["x-2"]]
    assert again == ["x-1", "x-3"]  # a new run of thread a is a new task
    assert count(tmp_path, "bump") == 3


def test_tool_errors_are_not_recorded(tmp_path: Path) -> None:
    @tool
    def flaky(label: str) -> str:
        """Fail on the first call."""
        if effect(tmp_path, "flaky") == 1:
            raise ToolException("temporarily down")
        return "ok"

    flaky.handle_tool_error = True

    call = {"type": "tool_call", "id": "c1", "name": "flaky", "args": {"label": "x"}}
    graph = failing_once_graph(tmp_path, [durable(flaky)], call)
    config = {"configurable": {"thread_id": "errors"}}
    with open_checkpointer("memory://") as saver:
        compiled = graph.compile(checkpointer=saver)
        with pytest.raises(RuntimeError):
            compiled.invoke({"log": []}, config)
        assert compiled.invoke(None, config)["log"] == ["ok"]
    assert count(tmp_path, "flaky") == 2


def test_log_from_config_or_argument_wins_over_the_checkpointer(tmp_path: Path) -> None:
    given, configured = MemoryToolLog(), MemoryToolLog()
    explicit = durable(counting_tool(tmp_path, "one"), log=given)
    from_config = durable(counting_tool(tmp_path, "two"))

    def act(state: LogState) -> LogState:
        explicit.invoke({"label": "x"})
        from_config.invoke({"label": "y"})
        return {}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    with open_checkpointer("memory://") as saver:
        config = {"configurable": {"thread_id": "where", TOOL_LOG_KEY: configured}}
        graph.compile(checkpointer=saver).invoke({"log": []}, config)
    assert [r.tool for r in given.records("where")] == ["one"]
    assert [r.tool for r in configured.records("where")] == ["two"]


def test_outside_a_graph_a_durable_tool_is_an_ordinary_tool(tmp_path: Path) -> None:
    bump = durable(counting_tool(tmp_path))
    assert [bump.invoke({"label": "z"}) for _ in range(2)] == ["z-1", "z-2"]


def test_wrapper_keeps_the_tool_schema_and_decorates_functions(tmp_path: Path) -> None:
    inner = counting_tool(tmp_path)
    wrapped = durable_tool(inner)
    assert isinstance(wrapped, DurableTool)
    assert (wrapped.name, wrapped.description) == (inner.name, inner.description)
    assert wrapped.tool_call_schema.model_json_schema() == inner.tool_call_schema.model_json_schema()
    assert durable(wrapped) is wrapped

    @durable_tool
    def shout(text: str) -> str:
        """Upper-case text."""
        return text.upper()

    assert isinstance(shout, DurableTool)
    assert shout.invoke({"text": "hi"}) == "HI"


def test_postgres_table_comes_from_versioned_migrations(pg_url: str) -> None:
    with open_tool_log(pg_url):
        pass
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT version FROM durable_graph_migrations WHERE component = 'tool_results'"
        ).fetchall()
    assert rows == [(1,)]


async def test_idempotency_key_is_stable_across_reruns_and_differs_between_calls(tmp_path: Path) -> None:
    @tool
    def remember_key(label: str) -> str:
        """Return the call's idempotency key."""
        effect(tmp_path, "keys")
        return str(idempotency_key())

    keyed = durable(remember_key)
    seen: list[str] = []

    async def act(state: LogState) -> LogState:
        first = await keyed.ainvoke(
            {"type": "tool_call", "id": "k1", "name": "remember_key", "args": {"label": "a"}}
        )
        second = keyed.invoke({"label": "b"})
        seen.extend([first.content, second])
        if effect(tmp_path, "act") == 1:
            raise RuntimeError("fail once")
        return {}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    async with open_checkpointer("memory://") as saver:
        compiled = graph.compile(checkpointer=saver)
        with pytest.raises(RuntimeError):
            await compiled.ainvoke({"log": []}, {"configurable": {"thread_id": "keys"}})
        await compiled.ainvoke(None, {"configurable": {"thread_id": "keys"}})
    assert count(tmp_path, "keys") == 2  # each call ran once; the re-run got recorded results
    assert seen[:2] == seen[2:] and len(set(seen[:2])) == 2
    assert all(len(k) == 64 for k in seen)
    assert idempotency_key() is None


def test_unreachable_postgres_log_is_a_clear_error() -> None:
    from durable_graph.errors import BackendUnavailableError

    log = open_tool_log("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(BackendUnavailableError, match="tool result log: cannot reach Postgres"), log:
        pass
