"""The workflow is deterministic: recorded histories replay with the current code, and a changed
workflow is caught as nondeterministic."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError

from durable_graph.checkpointers import open_checkpointer
from durable_graph.temporal.activities import GraphActivities
from durable_graph.temporal.client import send_resume_async, start_run_async
from durable_graph.temporal.models import workflow_id_for
from durable_graph.temporal.workflow import GraphWorkflow
from tests.temporal.changed_workflow import ChangedWorkflow
from tests.temporal.previous_workflow import PreviousWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_recorded_histories_replay(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    linear = f"{thread_id}-linear"
    await start_run_async(
        client,
        thread_id=linear,
        graph="tests.temporal.graphs:linear",
        graph_kwargs={"log_file": log},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
    )
    hitl = f"{thread_id}-hitl"
    await start_run_async(
        client,
        thread_id=hitl,
        graph="tests.temporal.graphs:approval",
        graph_kwargs={"log_file": log},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
    )
    await send_resume_async(client, hitl, {"decision": "approve"}, wait=True)
    histories = [await client.get_workflow_handle(workflow_id_for(t)).fetch_history() for t in (linear, hitl)]

    replayer = Replayer(workflows=[GraphWorkflow])
    for history in histories:
        await replayer.replay_workflow(history)

    changed = Replayer(workflows=[ChangedWorkflow])
    for history in histories:
        with pytest.raises(NondeterminismError):
            await changed.replay_workflow(history)


async def test_runs_recorded_before_prepare_ran_locally_replay(
    client: Client, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    """A run started by a worker of the previous version ("prepare" as an activity of its own)
    replays with the current workflow, which records a patch marker to tell the two apart."""
    task_queue = "previous-" + uuid.uuid4().hex[:8]
    async with open_checkpointer(pg_url) as saver:
        activities = GraphActivities(saver, pg_url).all()
        async with Worker(client, task_queue=task_queue, workflows=[PreviousWorkflow], activities=activities):
            status = await start_run_async(
                client,
                thread_id=thread_id,
                graph="tests.temporal.graphs:linear",
                graph_kwargs={"log_file": str(tmp_path / "log"), "nodes": 2},
                input={"log": []},
                url=pg_url,
                task_queue=task_queue,
            )
    assert status.status == "done" and status.values == {"log": ["n0", "n1"]}
    history = await client.get_workflow_handle(workflow_id_for(thread_id)).fetch_history()
    scheduled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert [e.user_metadata.summary.data for e in scheduled] == [b'"prepare"', b'"n0"', b'"n1"']

    await Replayer(workflows=[GraphWorkflow]).replay_workflow(history)
