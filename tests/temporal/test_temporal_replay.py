"""The workflow is deterministic: recorded histories replay with the current code, and a changed
workflow is caught as nondeterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from durable_graph.temporal.client import send_resume_async, start_run_async
from durable_graph.temporal.models import workflow_id_for
from durable_graph.temporal.workflow import GraphWorkflow
from tests.temporal.changed_workflow import ChangedWorkflow

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
