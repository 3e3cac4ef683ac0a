"""The memory checkpointer's own operations beyond the conformance suite, on real graphs."""

from __future__ import annotations

import pytest

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.memory import MemoryCheckpointer
from durable_graph.errors import ThreadNotFoundError
from tests.checkpoint_graphs import appending_graph, delta_graph, thread


def test_sync_and_async_opener_yield_a_working_saver() -> None:
    with open_checkpointer("memory://") as saver:
        assert isinstance(saver, MemoryCheckpointer)
        graph = appending_graph(saver, nodes=2)
        graph.invoke({"count": 0}, thread("t"))
        assert graph.get_state(thread("t")).values["items"] == ["x-0-1", "x-1-2"]


async def test_async_graph_and_extra_operations() -> None:
    async with open_checkpointer("memory://") as saver:
        graph = appending_graph(saver, nodes=2)
        await graph.ainvoke({"count": 0}, thread("a", metadata={"run_id": "r1"}))
        await graph.ainvoke({"count": 0}, thread("c", metadata={"run_id": "r2"}))
        await saver.acopy_thread("a", "b")
        assert (await graph.aget_state(thread("b"))).values["count"] == 2
        # a copy keeps the run ids of its checkpoints, so deleting the run deletes the copy too
        await saver.adelete_for_runs(["r1"])
        assert await saver.aget_tuple(thread("a")) is None
        assert await saver.aget_tuple(thread("b")) is None
        await saver.aprune(["c"], strategy="keep_latest")
        assert len([t async for t in saver.alist(thread("c"))]) == 1
        await saver.aprune(["c"], strategy="delete")
        assert await saver.aget_tuple(thread("c")) is None


def test_delete_for_runs_drops_checkpoints_writes_and_unused_values() -> None:
    saver = MemoryCheckpointer()
    graph = appending_graph(saver, nodes=2)
    graph.invoke({"count": 0}, thread("r", metadata={"run_id": "run-a"}))
    blobs_after_a = len(saver.blobs)
    graph.invoke({"count": 5}, thread("r", metadata={"run_id": "run-b"}))
    saver.delete_for_runs(["run-b"])
    assert graph.get_state(thread("r")).values["items"] == ["x-0-1", "x-1-2"]
    assert {t.metadata.get("run_id") for t in saver.list(thread("r"))} == {"run-a"}
    assert len(saver.blobs) == blobs_after_a
    kept = {(k[1], k[2]) for k in saver.writes if k[0] == "r"}
    assert all(
        ck in {(t.config["configurable"]["checkpoint_ns"], t.checkpoint["id"]) for t in saver.list(None)}
        for ck in kept
    )


def test_prune_keep_latest_unlinks_the_head_and_keeps_its_state() -> None:
    saver = MemoryCheckpointer()
    graph = appending_graph(saver, nodes=3)
    graph.invoke({"count": 0}, thread("p"))
    graph.invoke({"count": 0}, thread("other"))
    before = graph.get_state(thread("p")).values
    saver.prune(["p"])
    (head,) = list(saver.list(thread("p")))
    assert head.parent_config is None
    assert graph.get_state(thread("p")).values == before
    assert len(list(saver.list(thread("other")))) == 5
    assert all(
        k[1:] and k[0] != "p" or k[3] in head.checkpoint["channel_versions"].values() for k in saver.blobs
    )
    graph.invoke({"count": 10}, thread("p"))
    assert graph.get_state(thread("p")).values["count"] == 13


def test_prune_refuses_delta_channel_threads() -> None:
    saver = MemoryCheckpointer()
    graph = delta_graph(saver)
    for _ in range(4):
        graph.invoke({}, thread("d"))
    stored = len(list(saver.list(thread("d"))))
    with pytest.raises(NotImplementedError, match="DeltaChannel: d"):
        saver.prune(["d"])
    assert len(list(saver.list(thread("d")))) == stored
    assert graph.get_state(thread("d")).values["log"] == [f"entry-{i}" for i in range(4)]


def test_copy_thread_refuses_missing_source_and_busy_target() -> None:
    saver = MemoryCheckpointer()
    graph = appending_graph(saver, nodes=1)
    graph.invoke({"count": 0}, thread("src"))
    graph.invoke({"count": 7}, thread("busy"))
    with pytest.raises(ThreadNotFoundError, match="'nope'"):
        saver.copy_thread("nope", "dst")
    with pytest.raises(ValueError, match="already has checkpoints"):
        saver.copy_thread("src", "busy")
    assert graph.get_state(thread("busy")).values["items"] == ["x-0-8"]
    saver.copy_thread("src", "dst")
    graph.invoke({"count": 1}, thread("dst"))
    assert graph.get_state(thread("src")).values["items"] == ["x-0-1"]
    assert graph.get_state(thread("dst")).values["items"] == ["x-0-1", "x-0-2"]


def test_bad_arguments_are_named() -> None:
    saver = MemoryCheckpointer()
    with pytest.raises(ValueError, match="unknown prune strategy 'all'"):
        saver.prune(["t"], strategy="all")
    with pytest.raises(TypeError, match="not the string"):
        saver.delete_for_runs("run-1")
