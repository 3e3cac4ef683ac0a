"""A crash of the Agent Server (SIGKILL) with our checkpointer: what survives, what the server loses,
and the way back.

The in-memory runtime of ``langgraph dev`` keeps its own thread and run records in process memory
and writes them to ``.langgraph_api/`` every 10 s; our checkpointer has every checkpoint in Postgres
as soon as the node finished (``durability="sync"``). The test crashes the server right after one
of those writes, while one run waits for approval and another is in the middle of a node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from durable_graph.durable_tools import open_tool_log
from tests.agent_server.client import last_flush, next_flush, task_input, wait_for_log
from tests.agent_server.launcher import AgentServer

pytestmark = pytest.mark.slow


def checkpoint_ids(history: list[dict[str, Any]]) -> list[str]:
    return [h["checkpoint"]["checkpoint_id"] for h in history]


async def test_threads_survive_a_crash_of_the_server(agent_server: AgentServer, pg_url: str) -> None:
    client = get_client(url=agent_server.url)
    # A run held in the middle of its ``slow`` node, on a thread of the slow graph.
    gate = agent_server.workdir / "gate-crash"
    cut = await client.threads.create(graph_id="slow")
    cut_run = await client.runs.create(
        cut["thread_id"], "slow", input={"tag": "cut", "gate": str(gate)}, durability="sync"
    )
    await wait_for_log(client, cut["thread_id"], "first:cut")

    # Right after the server wrote its records (the cut run among them, as running), another run
    # starts and the agent runs until it waits for approval; the server is killed before its next
    # write, so its records of these two threads never reach the disk. On a machine too slow for
    # that, try again.
    for _ in range(3):
        flushed = await next_flush(agent_server)
        lost = (await client.threads.create(graph_id="slow"))["thread_id"]
        await client.runs.create(lost, "slow", input={"tag": "lost", "gate": str(gate)}, durability="sync")
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(thread_id, "agent", input=task_input(), durability="sync")
        await wait_for_log(client, lost, "first:lost")
        before = await client.threads.get_state(thread_id)
        history_before = await client.threads.get_history(thread_id, limit=100)
        if last_flush(agent_server) == flushed:
            agent_server.kill()
            break
    else:
        pytest.fail("the server wrote its records during every attempt")
    assert before["next"] == ["tool"]
    [approval] = before["interrupts"]
    assert approval["value"]["tool"] == "write_report"

    agent_server.start()
    client = get_client(url=agent_server.url)

    # The server lost its record of the thread, though our checkpointer holds all of it.
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)
    # The way back: create the thread record again, naming its graph; its state is all there.
    await client.threads.create(thread_id=thread_id, graph_id="agent", if_exists="do_nothing")
    after = await client.threads.get_state(thread_id)
    assert after["checkpoint"] == before["checkpoint"]
    assert after["values"] == before["values"]
    assert [i["value"] for i in after["interrupts"]] == [approval["value"]]
    assert checkpoint_ids(await client.threads.get_history(thread_id, limit=100)) == checkpoint_ids(
        history_before
    )

    # The same thread id, resumed: the run finishes, and no node that finished before runs again.
    final = await client.runs.wait(
        thread_id, "agent", command={"resume": {"action": "approve"}}, durability="sync"
    )
    assert final["evaluation"]["verdict"] == "done"
    assert [r["tool"] for r in final["tool_results"]] == ["search_files", "write_report"]
    history = await client.threads.get_history(thread_id, limit=100)
    assert checkpoint_ids(history)[-len(history_before) :] == checkpoint_ids(history_before)
    assert all(h["metadata"]["source"] == "loop" for h in history[: -len(history_before)])
    with open_tool_log(pg_url) as log:
        attempts = {r.tool: r.attempts for r in log.records(thread_id)}
    assert attempts == {"search_files": 1, "write_report": 1}
    assert (agent_server.workdir / "reports").is_dir()

    # The run cut off in the middle was recorded as running: the new server runs it again, and it
    # goes on from our last checkpoint, so ``first`` does not run twice.
    gate.touch()
    await client.runs.join(cut["thread_id"], cut_run["run_id"])
    assert (await client.runs.get(cut["thread_id"], cut_run["run_id"]))["status"] == "success"
    state = await client.threads.get_state(cut["thread_id"])
    assert state["values"]["log"] == ["first:cut", "slow:cut", "last:cut"]

    # The run whose record was lost: its thread comes back like the agent's, and a run without input
    # goes on from our last checkpoint.
    with pytest.raises(NotFoundError):
        await client.threads.get(lost)
    await client.threads.create(thread_id=lost, graph_id="slow", if_exists="do_nothing")
    resumed = await client.runs.wait(lost, "slow", input=None, durability="sync")
    assert resumed["log"] == ["first:lost", "slow:lost", "last:lost"]

    # The durable-graph CLI sees the same threads in the same database.
    def cli(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "durable_graph.cli", *args, "--json", "--url", pg_url],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)

    shown = cli("show", thread_id)
    assert shown["status"] == "done"
    assert shown["checkpoint_id"] == history[0]["checkpoint"]["checkpoint_id"]
    listed = {t["thread_id"]: t["status"] for t in cli("threads")}
    assert listed[thread_id] == "done" and listed[lost] == "done"
