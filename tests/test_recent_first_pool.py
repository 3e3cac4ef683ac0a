"""Every Postgres pool of the package (the checkpointer's, the memory store's and the durable tools'
log's) hands out the idle connection returned last, so a process that calls it one at a time stays
on one server process. psycopg-pool's own pools hand them out in turn, so these fail on a plain
pool."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata

from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.durable_tools.logs import PostgresToolLog
from durable_graph.memory import PgVectorStore
from tests.checkpoint_graphs import item
from tests.test_store_support import TOPICS, keyword_embed


def grown_to_three(pool: Any) -> int:
    """Grows ``pool`` to three connections, taken and returned in turn (the third first); the
    backend pid of the one returned last."""
    with pool.connection() as first, pool.connection(), pool.connection():
        pid: int = first.info.backend_pid
    return pid


async def agrown_to_three(pool: Any) -> int:
    async with pool.connection() as first, pool.connection(), pool.connection():
        pid: int = first.info.backend_pid
    return pid


def checkpoint_of(thread_id: str) -> tuple[Any, ...]:
    """The arguments of a ``put`` of a new thread holding a list of two items."""
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    values = {"items": [item("a"), item("b")]}
    return (
        config,
        generate_checkpoint(channel_values=values, channel_versions={"items": "1"}),
        generate_metadata(),
        {"items": "1"},
    )


def test_checkpointer_calls_one_at_a_time_keep_to_the_connection_returned_last(pg_url: str) -> None:
    with PostgresCheckpointer(pg_url) as saver:
        config = saver.put(*checkpoint_of("recent-" + uuid.uuid4().hex))
        returned_last = grown_to_three(saver.pool)
        for _ in range(3):
            assert saver.get_tuple(config) is not None
            with saver.pool.connection() as conn:
                assert conn.info.backend_pid == returned_last


async def test_async_checkpointer_calls_keep_to_the_connection_returned_last(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url) as saver:
        config = await saver.aput(*checkpoint_of("recent-async-" + uuid.uuid4().hex))
        pool = await saver.apool()
        returned_last = await agrown_to_three(pool)
        for _ in range(3):
            assert await saver.aget_tuple(config) is not None
            async with pool.connection() as conn:
                assert conn.info.backend_pid == returned_last


def test_memory_searches_one_at_a_time_keep_to_the_connection_returned_last(pg_url: str) -> None:
    namespace = ("recent", uuid.uuid4().hex)
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=len(TOPICS), fields=["text"])
    store.open()
    try:
        store.put(namespace, "a", {"text": "tea"})
        pool = store._sync_pool()
        returned_last = grown_to_three(pool)
        for _ in range(3):
            assert [found.key for found in store.search(namespace, query="tea")] == ["a"]
            with pool.connection() as conn:
                assert conn.info.backend_pid == returned_last
    finally:
        store.close()


async def test_async_memory_searches_keep_to_the_connection_returned_last(pg_url: str) -> None:
    namespace = ("recent-async", uuid.uuid4().hex)
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=len(TOPICS), fields=["text"])
    try:
        await store.aput(namespace, "a", {"text": "tea"})
        pool = await store._async_pool()
        returned_last = await agrown_to_three(pool)
        for _ in range(3):
            assert [found.key for found in await store.asearch(namespace, query="tea")] == ["a"]
            async with pool.connection() as conn:
                assert conn.info.backend_pid == returned_last
    finally:
        await store.aclose()


def test_tool_log_statements_one_at_a_time_keep_to_the_connection_returned_last(pg_url: str) -> None:
    log = PostgresToolLog(pg_url)
    log.open()
    try:
        returned_last = grown_to_three(log._pool)
        for _ in range(3):
            assert log._run("SELECT pg_backend_pid()", ()) == [(returned_last,)]
    finally:
        log.close()
