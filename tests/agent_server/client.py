"""What the Agent Server tests do with ``langgraph-sdk``, and when the server writes its own records."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph_sdk.client import LangGraphClient

from durable_graph.graphs import agent_input
from tests.agent_server.launcher import AgentServer

REPORT_TASK = "search for apples in my files and write a report"


def task_input(task: str = REPORT_TASK) -> dict[str, Any]:
    """The bundled agent's input for ``task``, as JSON."""
    return {**agent_input(task), "messages": [{"role": "user", "content": task}]}


async def wait_for_log(client: LangGraphClient, thread_id: str, entry: str, timeout: float = 30.0) -> None:
    """Wait until the slow graph's ``log`` on ``thread_id`` holds ``entry``."""
    for _ in range(int(timeout / 0.1)):
        state = await client.threads.get_state(thread_id)
        if entry in ((state["values"] or {}).get("log") or []):  # type: ignore[union-attr]
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{entry!r} never appeared in the log of thread {thread_id}")


async def next_flush(server: AgentServer, timeout: float = 30.0) -> float:
    """Wait until the in-memory runtime writes its thread and run records to disk (it does every
    10 s, in ``.langgraph_api/``); returns the file's new modification time."""
    records = server.workdir / ".langgraph_api" / ".langgraph_ops.pckl"
    before = last_flush(server)
    for _ in range(int(timeout / 0.05)):
        if records.exists() and records.stat().st_mtime != before:
            return records.stat().st_mtime
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the server did not write {records} within {timeout}s")


def last_flush(server: AgentServer) -> float:
    records = server.workdir / ".langgraph_api" / ".langgraph_ops.pckl"
    return records.stat().st_mtime if records.exists() else 0.0
