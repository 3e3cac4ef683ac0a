"""``durable_graph.server.checkpointer`` and ``store``: what they open, what they refuse, and the
capabilities the Agent Server looks for in a custom checkpointer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph_sdk import get_client

from durable_graph import server
from durable_graph.checkpointers import MemoryCheckpointer, PostgresCheckpointer, SqliteCheckpointer
from durable_graph.durable_tools import PostgresToolLog, open_tool_log
from durable_graph.errors import BackendUnavailableError, InvalidURLError
from durable_graph.memory.store import PgVectorStore
from durable_graph.temporal.devserver import free_port
from durable_graph.urls import URL_ENV
from tests.agent_server.client import task_input
from tests.agent_server.conftest import server_dir
from tests.agent_server.launcher import AgentServer


@pytest.mark.parametrize("saver", [PostgresCheckpointer, SqliteCheckpointer, MemoryCheckpointer])
def test_the_server_finds_every_capability_it_looks_for(
    saver: type[BaseCheckpointSaver], monkeypatch: pytest.MonkeyPatch
) -> None:
    # langgraph-api reads its settings on import; these are the ones ``langgraph dev`` gives it
    for name, value in {
        "REDIS_URI": "fake",
        "DATABASE_URI": ":memory:",
        "MIGRATIONS_PATH": "__inmem",
    }.items():
        monkeypatch.setenv(name, value)
    from langgraph_api._checkpointer._adapter import CheckpointerCapabilities

    capabilities = CheckpointerCapabilities.from_type(saver)
    assert capabilities.has_adelete_thread
    assert capabilities.has_adelete_for_runs
    assert capabilities.has_acopy_thread
    assert capabilities.has_aprune


async def test_opens_postgres(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    monkeypatch.setenv(URL_ENV, pg_url)
    with pytest.raises(RuntimeError, match="the server's checkpointer is not open"):
        server.tool_log()
    async with server.checkpointer() as saver, server.store() as store:
        assert isinstance(saver, PostgresCheckpointer) and isinstance(store, PgVectorStore)
        assert isinstance(server.tool_log(), PostgresToolLog)
        config = {"configurable": {"thread_id": "entry-points", "checkpoint_ns": ""}}
        assert await saver.aget_tuple(config) is None
        await store.aput(("entry",), "k", {"text": "v"})
        assert (await store.aget(("entry",), "k")).value == {"text": "v"}  # type: ignore[union-attr]


async def test_sqlite_serves_checkpoints_but_not_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(URL_ENV, f"sqlite:///{tmp_path / 'server.db'}")
    async with server.checkpointer() as saver:
        assert isinstance(saver, SqliteCheckpointer)
    with pytest.raises(InvalidURLError, match="the memory store needs Postgres"):
        async with server.store():
            pass


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
async def test_refuses_backends_that_forget_on_restart(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(URL_ENV, url)
    for entry_point in (server.checkpointer, server.store):
        with pytest.raises(InvalidURLError, match="lost when it stops"):
            async with entry_point():
                pass


async def test_bad_and_unreachable_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "mysql://db/agents")
    with pytest.raises(InvalidURLError, match="unknown backend 'mysql'"):
        async with server.checkpointer():
            pass
    monkeypatch.setenv(URL_ENV, f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")
    with pytest.raises(BackendUnavailableError, match="cannot reach Postgres"):
        async with server.checkpointer():
            pass


def postgres_running(data_dir: Path) -> bool:
    return (data_dir / "postmaster.pid").exists()


async def test_embedded_postgres_stops_when_the_last_entry_point_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "pg"
    monkeypatch.setenv(URL_ENV, f"embedded://{data_dir}")
    async with server.store() as store:
        async with server.checkpointer():
            assert postgres_running(data_dir)
        # the store still uses it
        assert postgres_running(data_dir)
        await store.aput(("entry",), "k", {"text": "still here"})
    assert not postgres_running(data_dir)


@pytest.mark.slow
def test_a_server_with_a_bad_url_stops_at_startup_saying_why(tmp_path: Path) -> None:
    agent_server = AgentServer(server_dir(tmp_path), {URL_ENV: "memory://"})
    with pytest.raises(
        RuntimeError, match=r"DURABLE_GRAPH_URL='memory://' keeps threads in the server's memory"
    ):
        agent_server.start()


@pytest.mark.slow
async def test_a_server_on_sqlite(tmp_path: Path) -> None:
    """Checkpoints and tool results in a SQLite file; the server keeps its own store."""
    workdir = server_dir(tmp_path)
    config = json.loads((workdir / "langgraph.json").read_text())
    del config["store"]
    (workdir / "langgraph.json").write_text(json.dumps(config))
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    agent_server = AgentServer(workdir, {URL_ENV: url, "AGENT_WORKDIR": str(workdir)})
    client = get_client(url=agent_server.start())
    try:
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(thread_id, "agent", input=task_input(), durability="sync")
        assert (await client.threads.get_state(thread_id))["next"] == ["tool"]
        final = await client.runs.wait(thread_id, "agent", command={"resume": {"action": "approve"}})
        assert final["evaluation"]["verdict"] == "done"
    finally:
        agent_server.stop()
    with open_tool_log(url) as log:
        assert {r.tool: r.attempts for r in log.records(thread_id)} == {"search_files": 1, "write_report": 1}
