"""One thread, two runners: local ``graph.invoke`` and Temporal read and write the same checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command
from temporalio.client import Client, WorkflowExecutionStatus

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import TemporalRunError, ThreadAdvancedElsewhereError
from durable_graph.leases import thread_lease
from durable_graph.temporal.client import run_status_async, send_resume_async, start_run_async, wait_run_async
from durable_graph.temporal.models import workflow_id_for
from tests.temporal import graphs
from tests.temporal.graphs import read_log

pytestmark = pytest.mark.asyncio(loop_scope="module")


def run_locally(url: str, builder: Any, thread_id: str, value: Any, **kwargs: Any) -> dict:
    """``graph.invoke`` in this process, with the same Postgres checkpointer as the workers."""
    with open_checkpointer(url) as saver:
        graph = builder.compile(checkpointer=saver)
        return graph.invoke(value, {"configurable": {"thread_id": thread_id}}, **kwargs)


async def test_local_run_continues_on_temporal(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    builder = graphs.linear(log, nodes=5)
    # the local run stops after n1, as if its process had gone away
    await asyncio.to_thread(run_locally, pg_url, builder, thread_id, {"log": ["in"]}, interrupt_after=["n1"])
    assert read_log(log) == ["n0", "n1"]

    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph="tests.temporal.graphs:linear",
        graph_kwargs={"log_file": log, "nodes": 5},
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "done"
    assert status.values == {"log": ["in", "n0", "n1", "n2", "n3", "n4"]}
    assert read_log(log) == ["n0", "n1", "n2", "n3", "n4"]


async def test_local_interrupt_is_resumed_on_temporal(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    await asyncio.to_thread(run_locally, pg_url, graphs.approval(log), thread_id, {"log": []})
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph="tests.temporal.graphs:approval",
        graph_kwargs={"log_file": log},
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "waiting" and status.interrupts[0].value["type"] == "approval"
    status = await send_resume_async(client, thread_id, Command(resume={"decision": "approve"}), wait=True)
    assert status.status == "done"
    assert read_log(log) == ["draft", "ask", "ask", "finish"]


async def test_temporal_run_continues_locally(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    # on Temporal the flaky node exhausts its single attempt; the run fails after "start" was saved
    with pytest.raises(TemporalRunError, match="failed on purpose"):
        await start_run_async(
            client,
            thread_id=thread_id,
            graph="tests.temporal.graphs:flaky",
            graph_kwargs={"log_file": log, "failures": 1, "attempts": 1},
            input={"log": []},
            url=pg_url,
            task_queue=worker,
        )
    result = await asyncio.to_thread(run_locally, pg_url, graphs.flaky(log, failures=1), thread_id, None)
    assert result == {"log": ["start", "flaky", "end"]}
    assert read_log(log) == ["start", "flaky", "flaky", "end"]


async def test_temporal_interrupt_is_resumed_locally(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph="tests.temporal.graphs:approval",
        graph_kwargs={"log_file": log},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "waiting"
    result = await asyncio.to_thread(
        run_locally, pg_url, graphs.approval(log), thread_id, Command(resume={"decision": "approve"})
    )
    assert result == {"log": ["draft", "answer:approve", "finish"]}

    # the Temporal run still waits; resuming it now finds the thread moved on, runs nothing, and the
    # workflow completes saying so instead of failing
    with pytest.raises(ThreadAdvancedElsewhereError, match="advanced by another runner"):
        await send_resume_async(client, thread_id, {"decision": "reject"}, wait=True)
    assert read_log(log) == ["draft", "ask", "ask", "finish"]
    ended = await client.get_workflow_handle(workflow_id_for(thread_id)).describe()
    assert ended.status == WorkflowExecutionStatus.COMPLETED
    assert (await run_status_async(client, thread_id)).status == "advanced_elsewhere"
    final = await asyncio.to_thread(run_locally, pg_url, graphs.approval(log), thread_id, None)
    assert final == {"log": ["draft", "answer:approve", "finish"]}


async def test_temporal_waits_while_a_local_runner_holds_the_thread(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    async with thread_lease(pg_url, thread_id):  # what a local `durable-graph run` holds while it runs
        await start_run_async(
            client,
            thread_id=thread_id,
            graph="tests.temporal.graphs:linear",
            graph_kwargs={"log_file": log, "nodes": 2},
            input={"log": []},
            url=pg_url,
            task_queue=worker,
            wait=False,
        )
        await asyncio.sleep(1.5)
        assert (await run_status_async(client, thread_id)).checkpoint_id is None  # not even the input
    status = await wait_run_async(client, thread_id)
    assert status.status == "done"
    assert read_log(log) == ["n0", "n1"]
