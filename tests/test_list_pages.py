"""``list()`` reads a page at a time: the first checkpoints of a long history cost about as many
decodes as are taken, and paging loses, repeats and reorders nothing, also across threads and
namespaces whose checkpoints share ids."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, create_checkpoint, empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from durable_graph.checkpointers import PostgresCheckpointer, SqliteCheckpointer
from durable_graph.checkpointers.pages import FIRST_PAGE

STEPS = 300


class CountingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, counting the values it decodes."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        self.decoded += 1
        return super().loads_typed(data)


def open_saver(url: str, serde: CountingSerializer | None = None) -> BaseCheckpointSaver:
    saver: Any
    if url.startswith("sqlite:///"):
        saver = SqliteCheckpointer(url.removeprefix("sqlite:///"), serde=serde)
    else:
        saver = PostgresCheckpointer(url, serde=serde)
    saver.open()
    return saver


def put_history(
    saver: BaseCheckpointSaver, thread_id: str, steps: int, *, ns: str = "", ids: Any = None
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
    checkpoint = empty_checkpoint()
    for step in range(steps):
        checkpoint = create_checkpoint(checkpoint, None, step)
        if ids is not None:
            checkpoint["id"] = ids[step]
        version = saver.get_next_version(checkpoint["channel_versions"].get("note"), None)
        # A dict: every backend stores it apart from the checkpoint, and decodes it on its own.
        checkpoint["channel_values"] = {"note": {"step": step}}
        checkpoint["channel_versions"] = {"note": version}
        metadata: Any = {"step": step, "source": "loop", "parents": {}, "marker": thread_id[:8]}
        config = saver.put(config, checkpoint, metadata, {"note": version})


def test_the_first_ten_of_a_long_history_decode_about_ten(url: str) -> None:
    thread_id = "long-" + uuid.uuid4().hex
    with_counts = CountingSerializer()
    saver = open_saver(url, with_counts)
    try:
        put_history(saver, thread_id, STEPS)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}

        with_counts.decoded = 0
        first = list(itertools.islice(saver.list(config), 10))
        first_ten = with_counts.decoded

        with_counts.decoded = 0
        everything = list(saver.list(config))
        all_of_them = with_counts.decoded
    finally:
        saver.close()  # type: ignore[attr-defined]
    assert [t.metadata["step"] for t in first] == list(range(STEPS - 1, STEPS - 11, -1))
    assert [t.metadata["step"] for t in everything] == list(range(STEPS - 1, -1, -1))
    # Each checkpoint decodes its body and its one value: the first page, not the thread.
    assert all_of_them >= 2 * STEPS
    assert first_ten <= 2 * FIRST_PAGE < all_of_them / 10


def test_pages_list_every_checkpoint_once_in_order_across_threads_and_namespaces(url: str) -> None:
    marker = uuid.uuid4().hex[:8]
    shared_ids = [str(uuid.uuid4()) for _ in range(8)]
    shared_ids.sort()  # checkpoint ids grow with time, as LangGraph's do
    saver = open_saver(url)
    try:
        for thread in ("a", "b", "c"):
            for ns in ("", "sub:1"):
                put_history(saver, f"{marker}{thread}", 8, ns=ns, ids=shared_ids)
        listed = [
            (
                t.config["configurable"]["checkpoint_id"],
                t.config["configurable"]["thread_id"],
                t.config["configurable"]["checkpoint_ns"],
            )
            for t in saver.list(None, filter={"marker": marker})
        ]
        limited = list(saver.list(None, filter={"marker": marker}, limit=15))
        before = list(
            saver.list(
                {"configurable": {"thread_id": f"{marker}b"}},
                before={"configurable": {"checkpoint_id": shared_ids[5]}},
            )
        )
    finally:
        saver.close()  # type: ignore[attr-defined]
    assert len(listed) == 48 and len(set(listed)) == 48  # 3 threads x 2 namespaces x 8
    assert listed == sorted(listed, reverse=True)
    assert [t.config["configurable"]["checkpoint_id"] for t in limited] == [key[0] for key in listed[:15]]
    assert sorted(t.config["configurable"]["checkpoint_id"] for t in before) == sorted(shared_ids[:5] * 2)


def test_a_process_new_to_the_threads_lists_lists_that_hold_few_of_their_items(url: str) -> None:
    """A page whose lists name a small share of their threads' items (a list replaced at every step)
    is read by a process that has none of them yet, for two threads in one page."""
    marker = uuid.uuid4().hex[:8]
    threads = [f"{marker}-{name}" for name in ("a", "b")]
    configs: dict[str, RunnableConfig] = {
        t: {"configurable": {"thread_id": t, "checkpoint_ns": ""}} for t in threads
    }
    checkpoints = {t: empty_checkpoint() for t in threads}
    writer = open_saver(url)
    try:
        for step in range(40):
            for thread_id in threads:  # in turns, so the newest checkpoints are of both threads
                checkpoint = create_checkpoint(checkpoints[thread_id], None, step)
                version = writer.get_next_version(checkpoint["channel_versions"].get("docs"), None)
                checkpoint["channel_values"] = {
                    "docs": [{"source": f"{thread_id} step {step} doc {j}"} for j in range(3)]
                }
                checkpoint["channel_versions"] = {"docs": version}
                metadata: Any = {"step": step, "source": "loop", "parents": {}, "marker": marker}
                configs[thread_id] = writer.put(configs[thread_id], checkpoint, metadata, {"docs": version})
                checkpoints[thread_id] = checkpoint
        step_20_of_a = next(
            t.config["configurable"]["checkpoint_id"]
            for t in writer.list({"configurable": {"thread_id": threads[0]}})
            if t.metadata["step"] == 20
        )
    finally:
        writer.close()  # type: ignore[attr-defined]

    Listed = list[tuple[str, int, list[dict[str, str]]]]

    def listed_by_a_new_process(listing: Callable[[BaseCheckpointSaver], Iterator[Any]]) -> Listed:
        reader = open_saver(url)  # holds none of the threads' items
        try:
            return [
                (
                    t.config["configurable"]["thread_id"],
                    t.metadata["step"],
                    t.checkpoint["channel_values"]["docs"],
                )
                for t in listing(reader)
            ]
        finally:
            reader.close()  # type: ignore[attr-defined]

    def expected(thread_id: str, step: int) -> tuple[str, int, list[dict[str, str]]]:
        return thread_id, step, [{"source": f"{thread_id} step {step} doc {j}"} for j in range(3)]

    newest = listed_by_a_new_process(lambda reader: reader.list(None, filter={"marker": marker}, limit=4))
    assert sorted(newest) == sorted(expected(t, step) for t in threads for step in (38, 39))
    before: RunnableConfig = {"configurable": {"checkpoint_id": step_20_of_a}}
    older = listed_by_a_new_process(
        lambda reader: reader.list({"configurable": {"thread_id": threads[0]}}, before=before, limit=3)
    )
    assert older == [expected(threads[0], step) for step in (19, 18, 17)]


def test_async_listing_pages_the_same(url: str) -> None:
    thread_id = "async-" + uuid.uuid4().hex
    saver = open_saver(url)
    try:
        put_history(saver, thread_id, 35)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}

        async def take(limit: int | None) -> list[int]:
            return [t.metadata["step"] async for t in saver.alist(config, limit=limit)]

        async def takes() -> list[list[int]]:
            return [await take(None), await take(12), await take(0)]

        everything, twelve, none = asyncio.run(takes())
        assert everything == list(range(34, -1, -1))
        assert twelve == list(range(34, 22, -1))
        assert none == []
    finally:
        saver.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("limit", [-1, 1.5, "3"])
def test_a_bad_limit_is_refused(url: str, limit: Any) -> None:
    saver = open_saver(url)
    try:
        with pytest.raises(ValueError, match="limit"):
            list(saver.list(None, limit=limit))
    finally:
        saver.close()  # type: ignore[attr-defined]
