"""In async runs a task's pending writes ride with the put of the checkpoint that follows them when
that put starts while they wait (a turn of the event loop): one statement instead of two.
``aput_writes`` still returns only once its writes are stored, whether a put carried them, the put
failed, or no put came; writes no put follows at once are not held at all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, create_checkpoint, empty_checkpoint

from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.checkpointers.postgres import outbox as outbox_module
from durable_graph.checkpointers.postgres import pool as pool_module


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The statements the checkpointers' async pools run meanwhile (their first lines)."""
    seen: list[str] = []
    original = pool_module._adrive

    async def counting(conn: Any, op: Any) -> Any:
        steps = op.steps

        def recorded() -> Any:
            statement = next(steps)
            while True:
                seen.append(statement.sql.strip().splitlines()[0])
                rows = yield statement
                try:
                    statement = steps.send(rows)
                except StopIteration as stop:
                    return stop.value

        op.steps = recorded()
        return await original(conn, op)

    pool_module._adrive = counting
    try:
        yield seen
    finally:
        pool_module._adrive = original


async def first_checkpoint(saver: PostgresCheckpointer) -> RunnableConfig:
    thread: RunnableConfig = {
        "configurable": {"thread_id": "outbox-" + uuid.uuid4().hex, "checkpoint_ns": ""}
    }
    return await saver.aput(thread, create_checkpoint(empty_checkpoint(), None, 0), {"step": 0}, {})


async def child_of(saver: PostgresCheckpointer, parent: RunnableConfig) -> RunnableConfig:
    checkpoint = create_checkpoint(empty_checkpoint(), None, 1)
    return await saver.aput(parent, checkpoint, {"step": 1, "source": "loop", "parents": {}}, {})


async def pending_of(saver: PostgresCheckpointer, config: RunnableConfig) -> list[tuple[str, str, Any]]:
    found = await saver.aget_tuple(config)
    assert found is not None
    return sorted(found.pending_writes or [])


async def test_writes_submitted_with_the_next_put_are_stored_in_its_statement(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        parent = await first_checkpoint(saver)
        with counted_statements() as statements:
            writes = asyncio.ensure_future(
                saver.aput_writes(parent, [("items", ["a"]), ("step", 1)], "task-1")
            )
            child = asyncio.ensure_future(child_of(saver, parent))
            await asyncio.gather(writes, child)
        assert len(statements) == 1, statements
        assert await pending_of(saver, parent) == [("task-1", "items", ["a"]), ("task-1", "step", 1)]
        assert (await saver.aget_tuple(child.result())) is not None


async def test_a_carried_write_of_a_long_list_stores_its_items_in_the_put(pg_url: str) -> None:
    """A write of a long list names its items (see the stored forms' tests): carried by a put, the
    items are stored by the put's statement, and a process new to the thread reads them back."""
    long = [f"message {i} " + "words " * 100 for i in range(3)]
    async with PostgresCheckpointer(pg_url) as saver:
        parent = await first_checkpoint(saver)
        with counted_statements() as statements:
            writes = asyncio.ensure_future(saver.aput_writes(parent, [("messages", long)], "task-1"))
            child = asyncio.ensure_future(child_of(saver, parent))
            await asyncio.gather(writes, child)
        assert len(statements) == 1, statements
    async with PostgresCheckpointer(pg_url, item_cache_bytes=0) as fresh:
        assert await pending_of(fresh, parent) == [("task-1", "messages", long)]


async def test_writes_no_put_comes_for_are_stored_by_themselves(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        parent = await first_checkpoint(saver)
        with counted_statements() as statements:
            await saver.aput_writes(parent, [("items", ["a"])], "task-1")
        assert len(statements) == 1
        assert await pending_of(saver, parent) == [("task-1", "items", ["a"])]


async def test_writes_whose_put_failed_are_stored_by_themselves(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        parent = await first_checkpoint(saver)
        checkpoint = create_checkpoint(empty_checkpoint(), None, 1)
        unstorable = {"step": 1, "source": "loop", "parents": {}, "run": object()}  # metadata must be JSON
        writes = asyncio.ensure_future(saver.aput_writes(parent, [("items", ["a"])], "task-1"))
        failing = asyncio.ensure_future(saver.aput(parent, checkpoint, unstorable, {}))  # type: ignore[arg-type]
        results = await asyncio.gather(writes, failing, return_exceptions=True)
        assert results[0] is None and isinstance(results[1], Exception)
        assert await pending_of(saver, parent) == [("task-1", "items", ["a"])]


async def test_a_put_carries_only_the_writes_of_its_own_parent(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        parent, other = await first_checkpoint(saver), await first_checkpoint(saver)
        with counted_statements() as statements:
            writes = asyncio.ensure_future(saver.aput_writes(other, [("items", ["b"])], "task-2"))
            await asyncio.gather(writes, child_of(saver, parent))
        assert len(statements) == 2
        assert await pending_of(saver, other) == [("task-2", "items", ["b"])]
        assert await pending_of(saver, parent) == []


@pytest.mark.parametrize("special", [False, True], ids=["regular writes", "special writes"])
async def test_a_task_offered_twice_keeps_what_its_own_statements_would_store(
    pg_url: str, special: bool
) -> None:
    channel = "__error__" if special else "items"
    async with PostgresCheckpointer(pg_url) as saver:
        parent = await first_checkpoint(saver)
        # Both are offered in the same turn as the put starts.
        first = asyncio.ensure_future(saver.aput_writes(parent, [(channel, "first")], "task-1"))
        second = asyncio.ensure_future(saver.aput_writes(parent, [(channel, "second")], "task-1"))
        await asyncio.gather(first, second, child_of(saver, parent))
        # Neither rode with the put (one statement cannot store a row twice): each was sent on its
        # own, as two calls always were, and the put stored its checkpoint.
        stored = await pending_of(saver, parent)
        assert len(stored) == 1 and stored[0][2] in {"first", "second"}


def checkpoint_to_put() -> tuple[RunnableConfig, Checkpoint, RunnableConfig]:
    """A new thread, its first checkpoint (not yet put), and the config of writes to that checkpoint."""
    thread: RunnableConfig = {
        "configurable": {"thread_id": "outbox-" + uuid.uuid4().hex, "checkpoint_ns": ""}
    }
    first = create_checkpoint(empty_checkpoint(), None, 0)
    return thread, first, {"configurable": {**thread["configurable"], "checkpoint_id": first["id"]}}


async def test_writes_of_a_checkpoint_still_being_put_ride_with_the_put_chained_after_it(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        thread, first, written_to = checkpoint_to_put()
        with counted_statements() as statements:
            # As LangGraph does after an input: the input checkpoint's put is under way when the
            # input's writes come, and the next put starts once that one has ended.
            first_put = asyncio.ensure_future(saver.aput(thread, first, {"step": -1}, {}))
            await asyncio.sleep(0)
            writes = asyncio.ensure_future(saver.aput_writes(written_to, [("items", ["a"])], "task-1"))

            async def next_put() -> RunnableConfig:
                return await child_of(saver, await first_put)

            await asyncio.gather(writes, next_put())
        assert len(statements) == 2, statements
        assert await pending_of(saver, written_to) == [("task-1", "items", ["a"])]


async def test_writes_of_a_checkpoint_being_put_that_no_put_follows_are_stored_by_themselves(
    pg_url: str,
) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        thread, first, written_to = checkpoint_to_put()
        first_put = asyncio.ensure_future(saver.aput(thread, first, {"step": -1}, {}))
        await asyncio.sleep(0)
        writes = saver.aput_writes(written_to, [("items", ["a"])], "task-1")
        await asyncio.wait_for(asyncio.gather(first_put, writes), timeout=10)
        assert await pending_of(saver, written_to) == [("task-1", "items", ["a"])]


@pytest.mark.parametrize(
    "writes, metadata",
    [
        ([("__error__", "boom")], {}),
        ([("__interrupt__", ["ask"])], {}),
        ([("items", ["a"])], {"counters_since_delta_snapshot": {}}),
    ],
    ids=["an error", "an interrupt", "a thread with a DeltaChannel"],
)
async def test_writes_no_put_follows_at_once_are_not_held(
    pg_url: str, writes: list[tuple[str, Any]], metadata: dict[str, Any]
) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        thread: RunnableConfig = {
            "configurable": {"thread_id": "outbox-" + uuid.uuid4().hex, "checkpoint_ns": ""}
        }
        parent = await saver.aput(
            thread, create_checkpoint(empty_checkpoint(), None, 0), {"step": 0, **metadata}, {}
        )
        with counted_statements() as statements:
            sent = asyncio.ensure_future(saver.aput_writes(parent, writes, "task-1"))
            await asyncio.gather(sent, child_of(saver, parent))
        assert len(statements) == 2  # sent at once, on their own
        assert len(await pending_of(saver, parent)) == 1


def test_what_a_closed_event_loop_left_in_the_outbox_is_ignored(pg_url: str) -> None:
    """Offers and puts left behind by a loop that was closed without running them to the end."""
    with PostgresCheckpointer(pg_url) as saver:
        thread, first, written_to = checkpoint_to_put()
        parent = saver.put(thread, first, {"step": 0}, {})
        task_writes = saver._sql.task_writes(written_to, [("items", ["stale"])], "task-0", "")

        async def abandon() -> None:
            saver._outbox._offers.setdefault(
                (task_writes.thread_id, "", task_writes.checkpoint_id, None), []
            ).append(outbox_module.Offer(task_writes))
            saver._outbox.putting(task_writes.thread_id, "", task_writes.checkpoint_id, None)

        asyncio.run(abandon())

        async def next_loop() -> None:
            await asyncio.wait_for(saver.aput_writes(parent, [("items", ["a"])], "task-1"), timeout=10)
            await child_of(saver, parent)

        asyncio.run(next_loop())
        found = saver.get_tuple(parent)
        assert found is not None and found.pending_writes == [("task-1", "items", ["a"])]
