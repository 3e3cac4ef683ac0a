"""The project's agent on Temporal: plan / tool / evaluate as activities, approval through send_resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import InvalidResumeError
from durable_graph.graphs import agent_input, approve
from durable_graph.temporal.client import run_status_async, send_resume_async, start_run_async
from tests.temporal import graphs

pytestmark = pytest.mark.asyncio(loop_scope="module")

TASK = "search for launch in the files and write a report"


async def test_agent_asks_approval_and_finishes(
    client: Client, worker: str, pg_url: str, thread_id: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("The launch code is 4417.\n")
    kwargs = {"workdir": str(tmp_path)}
    status = await start_run_async(
        client,
        thread_id=thread_id,
        graph="tests.temporal.graphs:agent",
        graph_kwargs=kwargs,
        input=agent_input(TASK),
        url=pg_url,
        task_queue=worker,
    )
    assert status.status == "waiting" and status.next == ["tool"]
    [pending] = status.interrupts
    assert pending.value["type"] == "approval" and pending.value["tool"] == "write_report"

    with pytest.raises(InvalidResumeError, match="unknown action 'bogus'"):
        await send_resume_async(client, thread_id, {"action": "bogus"})
    assert (await run_status_async(client, thread_id)).status == "waiting"
    assert not (tmp_path / "reports").exists()

    status = await send_resume_async(client, thread_id, approve(), wait=True)
    assert status.status == "done"
    [report] = (tmp_path / "reports").iterdir()
    assert "4417" in report.read_text()

    # the thread reads the same from a local process
    async with open_checkpointer(pg_url) as saver:
        graph = graphs.agent(str(tmp_path)).compile(checkpointer=saver)
        state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    assert state.next == ()
    assert f"wrote reports/{report.name}" in state.values["final_answer"]
    assert state.config["configurable"]["checkpoint_id"] == status.checkpoint_id
