"""``examples/agent_server`` as a user runs it: ``langgraph dev --no-browser`` in its directory,
with no settings, on the embedded Postgres; stopped with SIGTERM, it leaves no Postgres behind."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from durable_graph.embedded import HOME_ENV
from durable_graph.urls import URL_ENV
from tests.agent_server.client import task_input
from tests.agent_server.conftest import EXAMPLE
from tests.agent_server.launcher import AgentServer

pytestmark = pytest.mark.slow


def postgres_pid(data_dir: Path) -> int | None:
    """The pid of the embedded Postgres running in ``data_dir``, if one is."""
    pid_file = data_dir / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def exits(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` is gone within ``timeout`` s (Postgres removes its pid file just before)."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_the_example_on_the_embedded_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = tmp_path / "agent_server"
    shutil.copytree(
        EXAMPLE, workdir, ignore=shutil.ignore_patterns("__pycache__", ".langgraph_api", "reports")
    )
    monkeypatch.delenv(URL_ENV, raising=False)  # the default: embedded://
    home = tmp_path / "home"
    server = AgentServer(workdir, {HOME_ENV: str(home)}, reload=True)
    data_dir = home / "pg"

    try:
        client = get_client(url=server.start())
        pid = postgres_pid(data_dir)
        assert pid is not None and alive(pid)
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(thread_id, "agent", input=task_input(), durability="sync")
        assert (await client.threads.get_state(thread_id))["next"] == ["tool"]

        server.stop()
        assert postgres_pid(data_dir) is None and exits(pid)

        # A clean stop wrote the server's own records: it knows the thread without help.
        client = get_client(url=server.start())
        assert (await client.threads.get(thread_id))["status"] == "interrupted"
        final = await client.runs.wait(thread_id, "agent", command={"resume": {"action": "approve"}})
        assert final["evaluation"]["verdict"] == "done"
        assert list((workdir / "reports").glob("*.md"))
    finally:
        server.stop()
    assert postgres_pid(data_dir) is None
