"""The memory store's and the durable tools' log's pools hand out the idle connection returned last,
as the checkpointer's do (``tests/test_postgres_checkpointer.py``): a process that calls them one at
a time stays on one server process. psycopg-pool's own pools hand them out in turn, so these fail on
a plain pool."""

from __future__ import annotations

import uuid

from durable_graph.durable_tools.logs import PostgresToolLog
from durable_graph.memory import PgVectorStore
from tests.test_store_support import TOPICS, keyword_embed


def test_memory_searches_one_at_a_time_keep_to_the_connection_returned_last(pg_url: str) -> None:
    namespace = ("recent", uuid.uuid4().hex)
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=len(TOPICS), fields=["text"])
    store.open()
    try:
        store.put(namespace, "a", {"text": "tea"})
        pool = store._sync_pool()
        with pool.connection() as first, pool.connection() as second, pool.connection() as third:
            pids = [conn.info.backend_pid for conn in (first, second, third)]
        # Returned third, second, then first: ``first`` is the one returned last.
        for _ in range(3):
            assert [item.key for item in store.search(namespace, query="tea")] == ["a"]
            with pool.connection() as conn:
                assert conn.info.backend_pid == pids[0]
    finally:
        store.close()


async def test_async_memory_searches_keep_to_the_connection_returned_last(pg_url: str) -> None:
    namespace = ("recent-async", uuid.uuid4().hex)
    store = PgVectorStore(pg_url, embed=keyword_embed, dims=len(TOPICS), fields=["text"])
    try:
        await store.aput(namespace, "a", {"text": "tea"})
        pool = await store._async_pool()
        async with pool.connection() as first, pool.connection() as second, pool.connection() as third:
            pids = [conn.info.backend_pid for conn in (first, second, third)]
        for _ in range(3):
            assert [item.key for item in await store.asearch(namespace, query="tea")] == ["a"]
            async with pool.connection() as conn:
                assert conn.info.backend_pid == pids[0]
    finally:
        await store.aclose()


def test_tool_log_statements_one_at_a_time_keep_to_the_connection_returned_last(pg_url: str) -> None:
    log = PostgresToolLog(pg_url)
    log.open()
    try:
        pool = log._pool
        with pool.connection() as first, pool.connection() as second, pool.connection() as third:
            pids = [conn.info.backend_pid for conn in (first, second, third)]
        for _ in range(3):
            assert log._run("SELECT pg_backend_pid()", ()) == [(pids[0],)]
    finally:
        log.close()
