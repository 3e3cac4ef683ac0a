"""Graphs run on Temporal: one activity per node, checkpoints in Postgres, small workflow histories."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import InvalidGraphError, TemporalRunError
from durable_graph.temporal.client import start_run_async
from durable_graph.temporal.models import RunResult, workflow_id_for
from tests.temporal.graphs import read_log

pytestmark = pytest.mark.asyncio(loop_scope="module")

LINEAR = "tests.temporal.graphs:linear"


async def activity_events(client: Client, thread_id: str) -> Sequence[HistoryEvent]:
    history = await client.get_workflow_handle(workflow_id_for(thread_id)).fetch_history()
    return history.events


async def test_each_node_is_an_activity_and_checkpointed(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph=LINEAR,
        graph_kwargs={"log_file": log, "nodes": 4},
        input={"log": ["in"]},
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "done"
    assert status.values == {"log": ["in", "n0", "n1", "n2", "n3"]}
    assert read_log(log) == ["n0", "n1", "n2", "n3"]

    events = await activity_events(client, thread_id)
    scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    # one activity per node; "prepare" ran as a local activity, recorded as a marker
    assert [e.user_metadata.summary.data for e in scheduled] == [b'"n0"', b'"n1"', b'"n2"', b'"n3"']
    markers = [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert [e.marker_recorded_event_attributes.marker_name for e in markers] == [
        "core_patch",
        "core_local_activity",
    ]

    async with open_checkpointer(pg_url) as saver:
        history = [c async for c in saver.alist({"configurable": {"thread_id": thread_id}})]
    # input, the step before n0, and one checkpoint after each node
    assert len(history) == 6
    assert history[0].checkpoint["id"] == status.checkpoint_id


async def test_history_carries_references_not_state(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    """The workflow history is as big for a 200 kB state as for an empty one."""
    sizes = []
    for n, blob in enumerate([0, 200_000]):
        thread = f"{thread_id}-{n}"
        status = await start_run_async(
            client,
            thread_id=thread,
            graph=LINEAR,
            graph_kwargs={"log_file": str(tmp_path / "log"), "nodes": 3, "blob_size": blob},
            input={"log": []},
            url=pg_url,
            task_queue=worker,
        )
        assert status.status == "done" and len(status.values.get("blob", "")) == blob
        history = await client.get_workflow_handle(workflow_id_for(thread)).fetch_history()
        sizes.append(sum(event.ByteSize() for event in history.events))
    assert abs(sizes[1] - sizes[0]) < 500, sizes


async def test_bad_graph_is_refused_before_starting(client: Client, pg_url: str, thread_id: str) -> None:
    with pytest.raises(InvalidGraphError, match="not of the form"):
        await start_run_async(client, thread_id=thread_id, graph="no_colon", url=pg_url)
    with pytest.raises(InvalidGraphError, match="cannot import module 'no_such_module'"):
        await start_run_async(client, thread_id=thread_id, graph="no_such_module:f", url=pg_url)
    with pytest.raises(InvalidGraphError, match="returned str"):
        await start_run_async(
            client, thread_id=thread_id, graph="tests.temporal.graphs:not_a_graph", url=pg_url
        )
    with pytest.raises(InvalidGraphError, match="rejected kwargs"):
        await start_run_async(
            client, thread_id=thread_id, graph=LINEAR, graph_kwargs={"bogus": 1}, url=pg_url
        )


async def test_continuing_an_unknown_thread_fails_clearly(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    with pytest.raises(TemporalRunError, match=f"thread '{thread_id}' does not exist"):
        await start_run_async(
            client,
            thread_id=thread_id,
            graph=LINEAR,
            graph_kwargs={"log_file": str(tmp_path / "log")},
            url=pg_url,
            task_queue=worker,
        )


async def test_long_thread_continues_as_new(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph=LINEAR,
        graph_kwargs={"log_file": log, "nodes": 5},
        input={"log": []},
        url=pg_url,
        task_queue=worker,
        steps_per_run=2,
    )
    assert status.status == "done" and status.values == {"log": ["n0", "n1", "n2", "n3", "n4"]}
    assert read_log(log) == ["n0", "n1", "n2", "n3", "n4"]
    handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
    assert (await handle.result()).steps == 5
    # walk back through the runs: prepare + 2 nodes, 2 nodes, 1 node
    runs, run_id = 0, ""
    while True:
        history = await client.get_workflow_handle(
            workflow_id_for(thread_id), run_id=run_id or None
        ).fetch_history()
        runs += 1
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            break
    assert runs == 3
