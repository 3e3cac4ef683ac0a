"""The step activity on its own (Temporal's ActivityEnvironment, a real Postgres): retries of a step
that already saved its checkpoint run nothing, and stale or foreign requests are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from durable_graph.checkpointers import open_checkpointer
from durable_graph.temporal import payload
from durable_graph.temporal.activities import GraphActivities, redact
from durable_graph.temporal.models import GraphSpec, PrepareRequest, StepRequest
from tests.temporal.graphs import read_log

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
async def activities(pg_url: str) -> AsyncIterator[GraphActivities]:
    async with open_checkpointer(pg_url) as saver:
        yield GraphActivities(saver, pg_url)


async def test_a_retried_step_that_already_saved_runs_nothing(
    activities: GraphActivities, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    env = ActivityEnvironment()
    log = str(tmp_path / "log")
    spec = GraphSpec("tests.temporal.graphs:linear", {"log_file": log, "nodes": 2})
    database = redact(pg_url)
    ready = await env.run(
        activities.prepare_thread,
        PrepareRequest(thread_id, spec, database, "w/r/prepare", payload.encode({})),
    )
    assert ready.status == "running" and ready.next == ["n0"]
    # a retry of "prepare" does not apply the input twice
    again = await env.run(
        activities.prepare_thread,
        PrepareRequest(thread_id, spec, database, "w/r/prepare", payload.encode({})),
    )
    assert again.checkpoint_id == ready.checkpoint_id

    step = StepRequest(thread_id, spec, database, "w/r/0", ready.checkpoint_id)
    first = await env.run(activities.run_step, step)
    assert first.next == ["n1"] and first.checkpoint_id != ready.checkpoint_id
    # the same attempt again, as after a worker died between saving the checkpoint and reporting
    retried = await env.run(activities.run_step, step)
    assert retried == first
    assert read_log(log) == ["n0"]

    # a new step that expects the old checkpoint: another runner moved the thread on. Not a failure:
    # the step runs nothing and says so, with where the thread stands now
    stale = StepRequest(thread_id, spec, database, "w/r/1", ready.checkpoint_id)
    moved = await env.run(activities.run_step, stale)
    assert moved.advanced_elsewhere and "advanced by another runner" in moved.advanced_elsewhere
    assert moved.checkpoint_id == first.checkpoint_id and moved.next == ["n1"]
    assert read_log(log) == ["n0"]


async def test_requests_for_another_database_or_graph_are_refused(
    activities: GraphActivities, thread_id: str, pg_url: str
) -> None:
    env = ActivityEnvironment()
    spec = GraphSpec("tests.temporal.graphs:linear", {"log_file": "unused"})
    with pytest.raises(ApplicationError, match="this worker stores threads in") as caught:
        await env.run(
            activities.prepare_thread, PrepareRequest(thread_id, spec, "sqlite:///other.db", "t", None)
        )
    assert caught.value.non_retryable
    bad = GraphSpec("tests.temporal.graphs:linear", {"log_file": "x", "bogus": 1})
    with pytest.raises(ApplicationError, match="rejected kwargs") as caught:
        await env.run(activities.prepare_thread, PrepareRequest(thread_id, bad, redact(pg_url), "t", None))
    assert caught.value.non_retryable and caught.value.type == "InvalidGraphError"


@pytest.mark.asyncio(loop_scope="module")
async def test_passwords_stay_out_of_workflow_history() -> None:
    assert redact("postgresql://me:s3cret@db:5432/app") == "postgresql://me:***@db:5432/app"
    assert redact("postgresql://me:p%40ss@db/app") == "postgresql://me:***@db/app"
    assert redact("postgresql://db/app?user=me&password=x&sslmode=require") == (
        "postgresql://db/app?user=me&password=***&sslmode=require"
    )
    assert redact("postgresql://me@db/app") == "postgresql://me@db/app"
    assert redact("embedded://") == "embedded://"
