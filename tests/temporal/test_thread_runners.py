"""A thread knows where it runs: ``durable_graph.runs.answers`` answers or continues it there, moves it
between runners on request, and never runs it here when its Temporal server does not answer.

The routing functions block, so these async tests call them in a thread while the module's event loop
runs the in-process worker, as an async front end would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import InvalidURLError, TemporalUnavailableError
from durable_graph.graphs import agent_input, approve, reject
from durable_graph.runs.answers import LOCAL, TemporalRunner, continue_thread, start_thread
from durable_graph.runs.placement import record_runner, runner_of
from durable_graph.runs.runner import NodeEvent, Outcome
from durable_graph.runs.settings import RunSettings
from durable_graph.runs.status import latest, status_of
from durable_graph.temporal import client as temporal_client
from durable_graph.temporal.client import cancel_run_async, start_run_async
from durable_graph.temporal.devserver import free_port
from durable_graph.temporal.models import workflow_id_for
from durable_graph.temporal.worker import running_worker

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop the in-process worker runs on

TASK = "search for launch in the files and write a report"


@pytest.fixture
def settings(tmp_path: Path) -> RunSettings:
    (tmp_path / "notes.txt").write_text("The launch code is 4417.\n")
    return RunSettings(workdir=str(tmp_path))


async def start(url: str, thread_id: str, settings: RunSettings, runner: Any) -> tuple[Outcome, list[str]]:
    events: list[NodeEvent] = []
    result = await asyncio.to_thread(
        start_thread, url, thread_id, agent_input(TASK), settings, runner=runner, on_event=events.append
    )
    return result, [e.node for e in events]


async def answer(url: str, thread_id: str, decision: Any, **kwargs: Any) -> tuple[Outcome, list[str]]:
    events: list[NodeEvent] = []
    result = await asyncio.to_thread(
        continue_thread, url, thread_id, decision, on_event=events.append, **kwargs
    )
    return result, [e.node for e in events]


async def workflow_statuses(client: Client, thread_id: str) -> list[WorkflowExecutionStatus | None]:
    query = f"WorkflowId = '{workflow_id_for(thread_id)}'"
    return [w.status async for w in client.list_workflows(query)]


@in_module_loop
async def test_an_answer_reaches_the_run_that_waits_for_it(
    client: Client, temporal_address: str, worker: str, pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    on_temporal = TemporalRunner(temporal_address, task_queue=worker)
    waiting, events = await start(pg_url, thread_id, settings, on_temporal)
    assert waiting.status == "interrupted" and waiting.interrupts[0]["tool"] == "write_report"
    assert events == ["plan", "tool", "plan", "__interrupt__"]  # what a local run reports
    assert runner_of(pg_url, thread_id) == on_temporal

    done, events = await answer(pg_url, thread_id, approve())  # no runner given: it goes where it waits
    assert done.status == "done" and "4417" in done.values["final_answer"]
    assert events == ["tool", "plan", "evaluate"]
    assert await workflow_statuses(client, thread_id) == [WorkflowExecutionStatus.COMPLETED]


@in_module_loop
async def test_a_lost_run_is_started_again_where_the_thread_runs(
    client: Client, temporal_address: str, worker: str, pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    await start(pg_url, thread_id, settings, TemporalRunner(temporal_address, task_queue=worker))
    # the run is gone (terminated by hand; a dev server without a database file forgets it too)
    await client.get_workflow_handle(workflow_id_for(thread_id)).terminate(reason="lost")

    done, events = await answer(pg_url, thread_id, reject("not now"))
    assert done.status == "done"
    assert events == ["tool", "plan", "evaluate"]
    statuses = await workflow_statuses(client, thread_id)
    assert sorted(s.name for s in statuses if s) == ["COMPLETED", "TERMINATED"]


@in_module_loop
async def test_taking_a_thread_back_ends_its_run_cleanly(
    client: Client, temporal_address: str, worker: str, pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    await start(pg_url, thread_id, settings, TemporalRunner(temporal_address, task_queue=worker))

    done, events = await answer(pg_url, thread_id, approve(), runner=LOCAL)
    assert done.status == "done" and events == ["tool", "plan", "evaluate"]
    assert await workflow_statuses(client, thread_id) == [WorkflowExecutionStatus.CANCELED]
    assert runner_of(pg_url, thread_id) == LOCAL


@in_module_loop
async def test_a_local_thread_moves_to_temporal(
    client: Client, temporal_address: str, worker: str, pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    waiting, events = await start(pg_url, thread_id, settings, LOCAL)
    assert waiting.status == "interrupted" and events == ["plan", "tool", "plan", "__interrupt__"]
    assert await workflow_statuses(client, thread_id) == []

    on_temporal = TemporalRunner(temporal_address, task_queue=worker)
    done, events = await answer(pg_url, thread_id, approve(), runner=on_temporal)
    assert done.status == "done" and events == ["tool", "plan", "evaluate"]
    assert await workflow_statuses(client, thread_id) == [WorkflowExecutionStatus.COMPLETED]
    assert runner_of(pg_url, thread_id) == on_temporal


@in_module_loop
async def test_an_unreachable_server_is_named_and_nothing_runs_here(
    pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    await start(pg_url, thread_id, settings, LOCAL)
    gone = TemporalRunner(f"127.0.0.1:{free_port()}")
    record_runner(pg_url, thread_id, gone)

    for runner in (None, LOCAL):  # taking it back needs its run ended, so that needs the server too
        with pytest.raises(TemporalUnavailableError, match=f"runs on Temporal at {gone.address}"):
            await answer(pg_url, thread_id, approve(), runner=runner)
    with open_checkpointer(pg_url) as saver:
        assert status_of(latest(saver, thread_id))[0] == "interrupted"  # nothing ran
    assert runner_of(pg_url, thread_id) == gone


def test_threads_outside_postgres_always_run_here(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    assert runner_of(url, "t") == LOCAL
    with pytest.raises(InvalidURLError, match="cannot run on Temporal"):
        record_runner(url, "t", TemporalRunner("127.0.0.1:7233"))


@in_module_loop
async def test_a_run_no_worker_acts_on_is_terminated_instead_of_left_running(
    client: Client, pg_url: str, thread_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(temporal_client, "CANCEL_WAIT", 1.0)
    spec = {"graph": "tests.temporal.graphs:linear", "graph_kwargs": {"log_file": str(tmp_path / "log")}}
    await start_run_async(
        client, thread_id=thread_id, **spec, input={"log": []}, url=pg_url, task_queue="no-worker", wait=False
    )
    assert await cancel_run_async(client, thread_id) is True
    assert await workflow_statuses(client, thread_id) == [WorkflowExecutionStatus.TERMINATED]
    assert await cancel_run_async(client, thread_id) is False  # none is going any more


@in_module_loop
async def test_an_answer_waits_for_a_worker_to_come(
    client: Client, temporal_address: str, pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    await start(pg_url, thread_id, settings, LOCAL)
    late = TemporalRunner(temporal_address, task_queue="late-" + thread_id)
    answering = asyncio.ensure_future(answer(pg_url, thread_id, approve(), runner=late))
    await asyncio.sleep(2)
    assert not answering.done()  # no worker polls that task queue yet
    async with running_worker(client, task_queue=late.task_queue, url=pg_url):
        done, events = await asyncio.wait_for(answering, 120)
    assert done.status == "done" and events == ["tool", "plan", "evaluate"]


@in_module_loop
async def test_the_web_inbox_sends_a_decision_to_the_workflow_that_waits(
    client: Client, temporal_address: str, worker: str, pg_url: str, thread_id: str, settings: RunSettings
) -> None:
    from durable_graph.web.decisions import Decisions

    await start(pg_url, thread_id, settings, TemporalRunner(temporal_address, task_queue=worker))
    async with open_checkpointer(pg_url) as saver:
        decisions = Decisions(pg_url, saver)
        run = await asyncio.to_thread(decisions.decide, thread_id, approve())
        while run.state == "running":
            await asyncio.sleep(0.1)
    assert run.error is None and [e["node"] for e in run.events] == ["tool", "plan", "evaluate"]
    assert await workflow_statuses(client, thread_id) == [WorkflowExecutionStatus.COMPLETED]
    assert runner_of(pg_url, thread_id) == TemporalRunner(temporal_address, task_queue=worker)
