"""The Agent Server with our checkpointer and store, driven by ``langgraph-sdk``: approvals, two
runs on one thread (the multitask strategies), copying and deleting threads, the store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError, ConflictError

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import memory_namespace
from durable_graph.memory import open_store
from tests.agent_server.client import task_input, wait_for_log
from tests.agent_server.launcher import AgentServer

pytestmark = pytest.mark.slow


@pytest.fixture
def client(agent_server: AgentServer) -> LangGraphClient:
    return get_client(url=agent_server.url)


async def waiting_for_approval(client: LangGraphClient) -> tuple[str, dict[str, Any]]:
    """A new agent thread run until it waits for approval of ``write_report``: its id and the request."""
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "agent", input=task_input(), durability="sync")
    state = await client.threads.get_state(thread_id)
    [request] = [i["value"] for i in state["interrupts"]]
    assert request["tool"] == "write_report"
    return thread_id, request


def saved_checkpoints(url: str, thread_id: str) -> list[Any]:
    with open_checkpointer(url) as saver:
        return list(saver.list({"configurable": {"thread_id": thread_id}}))


async def test_approve(client: LangGraphClient, pg_url: str) -> None:
    thread_id, request = await waiting_for_approval(client)
    final = await client.runs.wait(thread_id, "agent", command={"resume": {"action": "approve"}})
    [report] = [r for r in final["tool_results"] if r["tool"] == "write_report"]
    assert report["status"] == "ok" and report["args"] == request["args"]
    assert final["evaluation"]["verdict"] == "done"
    assert (await client.threads.get(thread_id))["status"] == "idle"
    # the agent's ``remember`` node wrote the finished task into our store
    with open_store(pg_url) as store:
        memories = store.search(memory_namespace("default"), query=request["args"]["title"])
    assert any(m.value["task"] == final["task"] for m in memories)


async def test_edit(client: LangGraphClient, agent_server: AgentServer) -> None:
    thread_id, request = await waiting_for_approval(client)
    args = {"title": "Edited apples", "content": "42 apples, checked by a person."}
    final = await client.runs.wait(thread_id, "agent", command={"resume": {"action": "edit", "args": args}})
    [report] = [r for r in final["tool_results"] if r["tool"] == "write_report"]
    assert report["status"] == "ok" and report["args"] == args
    written = (agent_server.workdir / "reports" / "edited-apples.md").read_text()
    assert "checked by a person" in written


async def test_reject(client: LangGraphClient) -> None:
    thread_id, _ = await waiting_for_approval(client)
    final = await client.runs.wait(
        thread_id, "agent", command={"resume": {"action": "reject", "reason": "no reports today"}}
    )
    [report, *_] = [r for r in final["tool_results"] if r["tool"] == "write_report"]
    assert report["status"] == "rejected"
    assert "no reports today" in report["output"]


async def test_a_bad_answer_fails_the_run_and_the_approval_still_waits(client: LangGraphClient) -> None:
    thread_id, request = await waiting_for_approval(client)
    failed = await client.runs.create(thread_id, "agent", command={"resume": {"action": "maybe"}})
    await client.runs.join(thread_id, failed["run_id"])
    assert (await client.runs.get(thread_id, failed["run_id"]))["status"] == "error"
    state = await client.threads.get_state(thread_id)
    assert [i["value"] for i in state["interrupts"]] == [request]
    final = await client.runs.wait(thread_id, "agent", command={"resume": {"action": "approve"}})
    assert final["evaluation"]["verdict"] == "done"


async def two_runs(
    client: LangGraphClient, agent_server: AgentServer, strategy: str
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """Run one held in the middle of ``slow`` on a new thread, then run two with ``strategy``."""
    gate = agent_server.workdir / f"gate-{uuid.uuid4().hex}"
    thread_id = (await client.threads.create(graph_id="slow"))["thread_id"]
    one = await client.runs.create(
        thread_id, "slow", input={"tag": "one", "gate": str(gate)}, durability="sync"
    )
    await wait_for_log(client, thread_id, "first:one")
    try:
        two = await client.runs.create(
            thread_id,
            "slow",
            input={"tag": "two"},
            multitask_strategy=strategy,
            durability="sync",  # type: ignore[arg-type]
        )
    except ConflictError:
        two = None
    gate.touch()
    for run in (one, two):
        if run is not None:
            await client.runs.join(thread_id, run["run_id"])
    return thread_id, one, two


async def log_and_runs(client: LangGraphClient, thread_id: str) -> tuple[list[str], set[str]]:
    """The thread's ``log`` and the ids of the runs that wrote its checkpoints."""
    state = await client.threads.get_state(thread_id)
    history = await client.threads.get_history(thread_id, limit=100)
    return state["values"]["log"], {h["metadata"]["run_id"] for h in history}


async def test_multitask_reject(client: LangGraphClient, agent_server: AgentServer) -> None:
    thread_id, one, two = await two_runs(client, agent_server, "reject")
    assert two is None  # refused with 409 while run one was busy
    log, runs = await log_and_runs(client, thread_id)
    assert log == ["first:one", "slow:one", "last:one"]
    assert runs == {one["run_id"]}


async def test_multitask_enqueue(client: LangGraphClient, agent_server: AgentServer) -> None:
    thread_id, one, two = await two_runs(client, agent_server, "enqueue")
    assert two is not None
    log, runs = await log_and_runs(client, thread_id)
    assert log == ["first:one", "slow:one", "last:one", "first:two", "slow:two", "last:two"]
    assert runs == {one["run_id"], two["run_id"]}


async def test_multitask_interrupt_keeps_the_first_runs_checkpoints(
    client: LangGraphClient, agent_server: AgentServer
) -> None:
    thread_id, one, two = await two_runs(client, agent_server, "interrupt")
    assert two is not None
    assert (await client.runs.get(thread_id, one["run_id"]))["status"] == "interrupted"
    log, runs = await log_and_runs(client, thread_id)
    # run one stopped in ``slow``; run two went on from its checkpoint after ``first``
    assert log == ["first:one", "first:two", "slow:two", "last:two"]
    assert runs == {one["run_id"], two["run_id"]}


async def test_multitask_rollback_deletes_the_first_runs_checkpoints(
    client: LangGraphClient, agent_server: AgentServer, pg_url: str
) -> None:
    thread_id, one, two = await two_runs(client, agent_server, "rollback")
    assert two is not None
    log, runs = await log_and_runs(client, thread_id)
    assert log == ["first:two", "slow:two", "last:two"]
    assert runs == {two["run_id"]}
    # gone from our database too, by the server's call to our ``adelete_for_runs``
    saved = saved_checkpoints(pg_url, thread_id)
    assert saved and {s.metadata["run_id"] for s in saved} == {two["run_id"]}


async def test_copy_and_delete_a_thread(client: LangGraphClient, pg_url: str) -> None:
    thread_id, request = await waiting_for_approval(client)
    copy = await client.threads.copy(thread_id)
    copy_id = copy["thread_id"]
    original = await client.threads.get_state(thread_id)
    copied = await client.threads.get_state(copy_id)
    assert copied["values"] == original["values"] and copied["next"] == ["tool"]
    assert len(saved_checkpoints(pg_url, copy_id)) == len(saved_checkpoints(pg_url, thread_id))
    # the copy goes its own way: rejected there, the original still waits
    await client.runs.wait(copy_id, "agent", command={"resume": {"action": "reject", "reason": "copy"}})
    assert [i["value"] for i in (await client.threads.get_state(thread_id))["interrupts"]] == [request]

    await client.threads.delete(thread_id)
    assert saved_checkpoints(pg_url, thread_id) == []
    assert saved_checkpoints(pg_url, copy_id)
    # the in-memory runtime refuses to prune, whatever the checkpointer can do
    with pytest.raises(APIStatusError) as refused:
        await client.threads.prune([copy_id], strategy="keep_latest")
    assert refused.value.status_code == 422


async def test_store_through_the_sdk_is_our_store(client: LangGraphClient, pg_url: str) -> None:
    namespace = ["notes", uuid.uuid4().hex]
    await client.store.put_item(namespace, "fruit", {"text": "forty-two apples in the cellar"})
    await client.store.put_item(namespace, "car", {"text": "the car needs new tyres"})
    found = await client.store.search_items(namespace, query="how many apples", limit=1)
    assert [item["key"] for item in found["items"]] == ["fruit"]
    assert (await client.store.get_item(namespace, "car"))["value"] == {"text": "the car needs new tyres"}
    with open_store(pg_url) as store:
        item = store.get(tuple(namespace), "fruit")
    assert item is not None and item.value == {"text": "forty-two apples in the cellar"}
    await client.store.delete_item(namespace, "car")
    with open_store(pg_url) as store:
        assert store.get(tuple(namespace), "car") is None
