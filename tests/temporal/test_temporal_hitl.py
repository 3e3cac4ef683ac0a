"""Retries per node policy, interrupts that wait for send_resume, one running workflow per thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import TemporalRunError, WorkflowRunningError
from durable_graph.temporal.client import run_status_async, send_resume_async, start_run_async
from durable_graph.temporal.models import workflow_id_for
from tests.temporal.graphs import read_log

pytestmark = pytest.mark.asyncio(loop_scope="module")

APPROVAL = "tests.temporal.graphs:approval"
FLAKY = "tests.temporal.graphs:flaky"


async def test_failing_node_is_retried_per_its_policy(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph=FLAKY,
        graph_kwargs={"log_file": log, "failures": 2, "attempts": 3},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "done"
    assert read_log(log) == ["start", "flaky", "flaky", "flaky", "end"]
    history = await client.get_workflow_handle(workflow_id_for(thread_id)).fetch_history()
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert started == [1, 3, 1]  # start, flaky (third attempt succeeded), end


async def test_exhausted_retries_fail_the_run_and_keep_the_checkpoints(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    with pytest.raises(TemporalRunError, match="flaky node failed on purpose"):
        await start_run_async(
            client,
            thread_id=thread_id,
            graph=FLAKY,
            graph_kwargs={"log_file": log, "failures": 5, "attempts": 2},
            input={"log": []},
            url=pg_url,
            task_queue=worker,
        )
    assert read_log(log) == ["start", "flaky", "flaky"]
    async with open_checkpointer(pg_url) as saver:
        latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
    assert latest is not None and latest.checkpoint["channel_values"]["log"] == ["start"]


async def test_interrupt_waits_for_send_resume(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph=APPROVAL,
        graph_kwargs={"log_file": log},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "waiting" and status.next == ["ask"]
    [pending] = status.interrupts
    assert pending.node == "ask" and pending.value == {"type": "approval", "message": "ship it?"}
    assert (await run_status_async(client, thread_id)).status == "waiting"

    # a second run of the same thread is refused while this one waits
    with pytest.raises(WorkflowRunningError, match=workflow_id_for(thread_id)):
        await start_run_async(
            client,
            thread_id=thread_id,
            graph=APPROVAL,
            graph_kwargs={"log_file": log},
            input={"log": []},
            url=pg_url,
            task_queue=worker,
        )

    status = await send_resume_async(client, thread_id, {"decision": "approve"}, wait=True)
    assert status.status == "done"
    assert read_log(log) == ["draft", "ask", "ask", "finish"]  # ask re-runs on resume, as in LangGraph
    async with open_checkpointer(pg_url) as saver:
        latest = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
    assert latest is not None
    assert latest.checkpoint["channel_values"]["log"] == ["draft", "answer:approve", "finish"]

    with pytest.raises(TemporalRunError, match="no Temporal run"):
        await send_resume_async(client, thread_id, {"decision": "approve"})

    # once the run is over, the thread may be run again
    again = await start_run_async(
        client,
        thread_id=thread_id,
        graph=APPROVAL,
        graph_kwargs={"log_file": log},
        input={"log": ["again"]},
        url=pg_url,
        task_queue=worker,
    )
    assert again.status == "waiting"
    await send_resume_async(client, thread_id, {"decision": "later"}, wait=True)


async def test_resume_is_refused_when_not_waiting(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    with pytest.raises(TemporalRunError, match="never run on Temporal"):
        await run_status_async(client, thread_id)
    with pytest.raises(TemporalRunError, match="no Temporal run"):
        await send_resume_async(client, thread_id, {"decision": "approve"})
    marker = tmp_path / "marker"
    await start_run_async(
        client,
        thread_id=thread_id,
        graph="tests.temporal.graphs:linear",
        graph_kwargs={"log_file": str(tmp_path / "log"), "slow": "n1", "marker": str(marker), "sleep": 2},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
        wait=False,
    )
    with pytest.raises(TemporalRunError, match="not waiting for a resume value"):
        await send_resume_async(client, thread_id, {"decision": "approve"})
    await client.get_workflow_handle(workflow_id_for(thread_id)).terminate("test over")
