"""Bad input gets a clear error naming what was wrong, and nothing already stored is lost."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import psycopg
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from pydantic import BaseModel, ValidationError

from durable_graph.checkpointers import open_checkpointer
from durable_graph.durable_tools import durable, open_tool_log
from durable_graph.errors import (
    BackendUnavailableError,
    CorruptCheckpointError,
    InvalidResumeError,
    SchemaVersionError,
)
from durable_graph.leases import thread_lease
from tests.chaos.pgserver import OwnPostgres
from tests.pg import fresh_database


class Counter(TypedDict, total=False):
    count: int
    note: str
    detail: dict[str, int]  # stored apart from the checkpoint row on Postgres, as a short note is not


def counter_graph() -> StateGraph:
    def inc(state: Counter) -> Counter:
        count = state.get("count", 0) + 1
        return {"count": count, "note": f"at {count}", "detail": {"at": count}}

    graph = StateGraph(Counter)
    graph.add_node("inc", inc)
    graph.add_edge(START, "inc")
    graph.add_edge("inc", END)
    return graph


def run_counter(url: str, thread_id: str, count: int = 1) -> dict[str, Any]:
    with open_checkpointer(url) as saver:
        return counter_graph().compile(checkpointer=saver).invoke({"count": count}, cfg(thread_id))


def cfg(thread_id: str, **extra: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, **extra}}


def stored_state(url: str, thread_id: str) -> dict[str, Any]:
    with open_checkpointer(url) as saver:
        return dict(counter_graph().compile(checkpointer=saver).get_state(cfg(thread_id)).values)


@pytest.fixture(params=["postgres", "sqlite"])
def own_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, which the test may damage."""
    if request.param == "postgres":
        with fresh_database(request.getfixturevalue("pg_server"), "bad_input") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'bad.db'}"


# -- a newer schema ---------------------------------------------------------------------------------


def bump_schema(url: str, version: int | None) -> None:
    """Pretend a newer durable-graph wrote the database (``version=None`` undoes it)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(f"PRAGMA user_version = {version or 1:d}")
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM durable_graph_migrations WHERE version >= 900")
        if version is not None:
            for component in ("checkpoints", "tool_results"):
                conn.execute("INSERT INTO durable_graph_migrations VALUES (%s, %s)", (component, version))


def test_newer_schema_is_refused_and_data_kept(own_url: str) -> None:
    run_counter(own_url, "kept", 41)
    with open_tool_log(own_url):
        pass
    bump_schema(own_url, 999)

    newer = r"999.*upgrade durable-graph"
    with pytest.raises(SchemaVersionError, match=newer), open_checkpointer(own_url) as saver:
        saver.get_tuple(cfg("kept"))
    if own_url.startswith("postgresql"):  # the tool log has a component of its own there
        with (
            pytest.raises(SchemaVersionError, match=r"tool_results schema version 999"),
            open_tool_log(own_url),
        ):
            pass

    bump_schema(own_url, None)
    assert stored_state(own_url, "kept") == {"count": 42, "note": "at 42", "detail": {"at": 42}}


# -- corrupt blobs ----------------------------------------------------------------------------------

# The same tables on both backends; ``%s`` becomes ``?`` for SQLite.
_CORRUPTIONS: dict[str, tuple[str, Any]] = {
    "value bytes": (
        "UPDATE dg_checkpoint_blobs SET data = %s WHERE thread_id = %s AND channel = 'detail'",
        b"\xc1",
    ),
    "value type": (
        "UPDATE dg_checkpoint_blobs SET type = %s WHERE thread_id = %s AND channel = 'detail'",
        "nope",
    ),
    "checkpoint body": ("UPDATE dg_checkpoints SET checkpoint = %s WHERE thread_id = %s", b"\xc1"),
}


def corrupt(url: str, what: str, thread_id: str) -> None:
    sql, value = _CORRUPTIONS[what]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            assert conn.execute(sql.replace("%s", "?"), (value, thread_id)).rowcount > 0
        return
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(sql, (value, thread_id)).rowcount > 0


@pytest.mark.parametrize("what", list(_CORRUPTIONS))
def test_corrupt_blob_names_thread_and_checkpoint(own_url: str, what: str) -> None:
    run_counter(own_url, "healthy")
    run_counter(own_url, "damaged")
    with open_checkpointer(own_url) as saver:
        head = saver.get_tuple(cfg("damaged"))
        assert head is not None
        checkpoint_id = head.config["configurable"]["checkpoint_id"]
    corrupt(own_url, what, "damaged")

    with open_checkpointer(own_url) as saver:
        with pytest.raises(CorruptCheckpointError) as info:
            saver.get_tuple(cfg("damaged"))
        assert info.value.thread_id == "damaged"
        assert "'damaged'" in str(info.value)
        if what != "checkpoint body":  # a body is per checkpoint; values may be shared by several
            assert info.value.checkpoint_id == checkpoint_id
        with pytest.raises(CorruptCheckpointError):
            counter_graph().compile(checkpointer=saver).invoke(None, cfg("damaged"))
    assert stored_state(own_url, "healthy") == {"count": 2, "note": "at 2", "detail": {"at": 2}}


# -- wrong resume values, states that do not validate ----------------------------------------------


def test_resume_value_of_the_wrong_shape_is_refused_and_can_be_given_again(tmp_path: Path) -> None:
    from durable_graph.graphs import agent_input, approve, build_agent, demo_tools

    url = f"sqlite:///{tmp_path / 'agent.db'}"
    config = cfg("approval")
    with open_checkpointer(url) as saver:
        agent = build_agent(tools=[durable(t) for t in demo_tools(tmp_path)]).compile(checkpointer=saver)
        paused = agent.invoke(agent_input("compute 12 * (3 + 4) and write a report"), config)
        assert paused["__interrupt__"][0].value["tool"] == "write_report"
        before = agent.get_state(config)
        for wrong in ("yes", {"action": "maybe"}, {"action": "reject"}, ["approve"]):
            with pytest.raises(InvalidResumeError, match="resume value|action|reason"):
                agent.invoke(Command(resume=wrong), config)
        after = agent.get_state(config)
        assert (after.next, after.values) == (before.next, before.values)
        final = agent.invoke(approve(), config)
    assert "84" in final["final_answer"]
    assert len(list((tmp_path / "reports").iterdir())) == 1


class Strict(BaseModel):
    count: int
    label: str = ""


def strict_graph() -> StateGraph:
    def inc(state: Strict) -> dict[str, Any]:
        return {"count": state.count + 1}

    def bad(state: Strict) -> dict[str, Any]:
        return {"count": "many"}

    def after(state: Strict) -> dict[str, Any]:
        return {"label": "after"}

    graph = StateGraph(Strict)
    for node in (inc, bad, after):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "inc")
    graph.add_edge("inc", "bad")
    graph.add_edge("bad", "after")
    graph.add_edge("after", END)
    return graph


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_state_that_does_not_validate_is_named_and_history_kept(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 's.db'}"}.get(backend) or (
        request.getfixturevalue("pg_url")
    )
    with open_checkpointer(url) as saver:
        graph = strict_graph().compile(checkpointer=saver)
        with pytest.raises(ValidationError, match=r"count\n.*valid integer.*input_value='x'"):
            graph.invoke({"count": "x"}, cfg(f"input-{backend}"))
        with pytest.raises(ValidationError, match=r"count\n.*valid integer.*input_value='many'"):
            graph.invoke({"count": 1}, cfg(f"node-{backend}"))
        # LangGraph validates a pydantic state when a node reads it, not when it is written: the bad
        # value is checkpointed. Every earlier checkpoint is intact, and forking the last valid one
        # with a corrected value repairs the thread.
        history = list(saver.list(cfg(f"node-{backend}")))
        assert [t.checkpoint["channel_values"].get("count") for t in history] == ["many", 2, 1, None]
        graph.update_state(history[1].config, {"count": 7}, as_node="bad")
        assert graph.invoke(None, cfg(f"node-{backend}")) == {"count": 7, "label": "after"}


# -- big states, hostile names ----------------------------------------------------------------------


def test_fifty_megabyte_state_round_trips(own_url: str) -> None:
    url = own_url
    big = os.urandom(25 * 1024 * 1024).hex()  # 50 MB of text that barely compresses

    def grow(state: Counter) -> Counter:
        return {"note": big}

    graph = StateGraph(Counter)
    graph.add_node("grow", grow)
    graph.add_edge(START, "grow")
    with open_checkpointer(url) as saver:
        graph.compile(checkpointer=saver).invoke({"count": 1}, cfg("big"))
    with open_checkpointer(url) as saver:
        values = graph.compile(checkpointer=saver).get_state(cfg("big")).values
    assert values["count"] == 1
    assert values["note"] == big


HOSTILE = [
    "x'; DROP TABLE checkpoints; --",
    'Robert"); DROP TABLE dg_checkpoints; --',
    "%s %(name)s ? ?1 :name $1",
    "back\\slash and 'quotes' and \"doubles\"",
    "ünïcødé 🧵 名前",
    "   ",
    "a" * 2000,
]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_sql_looking_ids_are_stored_and_read_back_verbatim(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'names.db'}"}.get(backend) or (
        request.getfixturevalue("pg_url")
    )
    with open_checkpointer(url) as saver, open_tool_log(url) as log:
        graph = counter_graph().compile(checkpointer=saver)
        for n, name in enumerate(HOSTILE):
            assert graph.invoke({"count": n}, cfg(name))["count"] == n + 1
            head = saver.get_tuple(cfg(name))
            assert head is not None and head.config["configurable"]["thread_id"] == name
            # a namespace written directly (graphs make their own from node names)
            config = saver.put(cfg(name, checkpoint_ns=name), _checkpoint(n), {"source": "input"}, {"n": "1"})
            assert config["configurable"]["checkpoint_ns"] == name
            [stored] = list(saver.list(cfg(name, checkpoint_ns=name)))
            assert stored.checkpoint["channel_values"] == {"n": n}
            with thread_lease(url, name):
                pass
            assert log.records(name) == []
        listed = {t.config["configurable"]["thread_id"] for t in saver.list(None)}
        assert set(HOSTILE) <= listed
        saver.delete_thread(HOSTILE[0])
        assert saver.get_tuple(cfg(HOSTILE[0])) is None
        assert graph.get_state(cfg(HOSTILE[1])).values["count"] == 2  # the tables are all still there


def _checkpoint(n: int) -> Any:
    from langgraph.checkpoint.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"n": n}
    checkpoint["channel_versions"] = {"n": "1"}
    return checkpoint


# -- the database goes away during a run ------------------------------------------------------------


timers: list[threading.Timer] = []


def outage_graph(server: OwnPostgres, runs: dict[str, int], *, back_after: float | None) -> StateGraph:
    """``first -> second -> third``; the first run of ``second`` stops the server, and starts it again
    ``back_after`` seconds later (never, for None)."""

    def first(state: Counter) -> Counter:
        runs["first"] += 1
        return {"count": 1}

    def second(state: Counter) -> Counter:
        runs["second"] += 1
        if runs["second"] == 1:
            server.stop()
            if back_after is not None:
                timer = threading.Timer(back_after, server.start)
                timer.start()
                timers.append(timer)
        return {"count": 2}

    def third(state: Counter) -> Counter:
        runs["third"] += 1
        return {"count": 3, "note": "done"}

    graph = StateGraph(Counter)
    for node in (first, second, third):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", "third")
    graph.add_edge("third", END)
    return graph


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path_factory.mktemp("outage") / "pg")
    yield server
    server.close()


@pytest.fixture
def own_server(module_server: OwnPostgres) -> Iterator[OwnPostgres]:
    module_server.start()  # an earlier test may have left it stopped
    yield module_server
    while timers:
        timers.pop().join()


def test_database_outage_mid_run_fails_and_the_thread_resumes(own_server: OwnPostgres) -> None:
    runs = {"first": 0, "second": 0, "third": 0}
    graph = outage_graph(own_server, runs, back_after=None)
    with (
        open_checkpointer(own_server.url) as saver,
        pytest.raises(BackendUnavailableError),
    ):
        graph.compile(checkpointer=saver).invoke({}, cfg("outage"), durability="sync")
    own_server.start()
    with open_checkpointer(own_server.url) as saver:
        compiled = graph.compile(checkpointer=saver)
        assert compiled.get_state(cfg("outage")).next == ("second",)
        assert compiled.invoke(None, cfg("outage"), durability="sync") == {"count": 3, "note": "done"}
    assert runs == {"first": 1, "second": 2, "third": 1}


def test_database_outage_error_names_the_server(own_server: OwnPostgres) -> None:
    graph = outage_graph(own_server, {"first": 0, "second": 0, "third": 0}, back_after=None)
    with open_checkpointer(own_server.url) as saver, pytest.raises(BackendUnavailableError, match="Postgres"):
        graph.compile(checkpointer=saver).invoke({}, cfg("named"), durability="sync")


def test_short_database_outage_is_ridden_out(own_server: OwnPostgres) -> None:
    graph = outage_graph(own_server, {"first": 0, "second": 0, "third": 0}, back_after=1.0)
    with open_checkpointer(own_server.url) as saver:
        final = graph.compile(checkpointer=saver).invoke({}, cfg("short"), durability="sync")
    assert final == {"count": 3, "note": "done"}


def test_tool_log_rides_out_a_postgres_restart(own_server: OwnPostgres) -> None:
    """A tool that ran must not lose its result because the server restarted meanwhile."""
    from durable_graph.durable_tools import ToolCallKey

    key = ToolCallKey("restart", "", "task", "id:1")
    with open_tool_log(own_server.url) as log:
        assert log.begin(key, "tool").attempts == 1
        own_server.stop("immediate")
        timer = threading.Timer(1.0, own_server.start)
        timer.start()
        timers.append(timer)
        log.finish(key, *log.codec.dumps("result"))  # retried until the server is back
        [record] = log.records("restart")
    assert (record.attempts, record.done) == (1, True)
