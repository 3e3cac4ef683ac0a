"""The Postgres checkpointer against a real server: round trips, storage, errors, concurrency."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, CheckpointTuple, writes_sort_key
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from psycopg.pq import Trace

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.codec import HASH_BYTES, Codec
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.checkpointers.postgres.pool import APPLICATION_NAME
from durable_graph.checkpointers.postgres.schema import MIGRATIONS, TABLES
from durable_graph.checkpointers.postgres.sql import CheckpointSQL
from durable_graph.checkpointers.thread_cache import DEFAULT_CACHE_BYTES
from durable_graph.errors import BackendUnavailableError, CorruptCheckpointError, InvalidURLError
from tests.checkpoint_graphs import item
from tests.pg import fresh_database

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def message_text(i: int, size: int = 1000) -> str:
    """Varied text of about ``size`` bytes, different for every ``i``."""
    words = [WORDS[(i * 7 + k * k) % len(WORDS)] + str((i * 31 + k) % 997) for k in range(size // 6)]
    return " ".join(words)[:size]


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def growing_chat_graph(checkpointer: Any, steps: int) -> Any:
    """One node that adds a ~1 KB message per step until the thread holds ``steps`` messages."""

    def speak(state: Chat) -> Chat:
        n = len(state["messages"])
        return {"messages": [AIMessage(message_text(n), id=f"m{n}")]}

    builder = StateGraph(Chat)
    builder.add_node("speak", speak)
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", lambda s: END if len(s["messages"]) >= steps else "speak")
    return builder.compile(checkpointer=checkpointer)


def thread(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": 10_000}


def scalar(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None


@pytest.fixture(scope="module")
def saver(pg_url: str) -> Iterator[PostgresCheckpointer]:
    with open_checkpointer(pg_url) as opened:
        yield opened


def put_checkpoint(
    saver: PostgresCheckpointer,
    thread_id: str,
    values: dict[str, Any],
    *,
    parent: RunnableConfig | None = None,
    run_id: str | None = None,
) -> RunnableConfig:
    """Put a checkpoint whose every channel gets a new version."""
    versions: ChannelVersions = {channel: saver.get_next_version(None, None) for channel in values}
    checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    if parent is not None:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    metadata = generate_metadata(run_id=run_id) if run_id else generate_metadata()
    return saver.put(config, checkpoint, metadata, versions)


# -- graphs, sync and async ------------------------------------------------------------------------


async def test_graph_runs_sync_and_async_on_either_opener(pg_url: str) -> None:
    thread_id = str(uuid.uuid4())
    with open_checkpointer(pg_url) as saver:
        graph = growing_chat_graph(saver, 3)
        graph.invoke({"messages": [HumanMessage("hi", id="h")]}, thread(thread_id))
        # The async pool opens lazily in this loop.
        state = await graph.ainvoke({"messages": [HumanMessage("again", id="h2")]}, thread(thread_id))
    assert [m.id for m in state["messages"]] == ["h", "m1", "m2", "h2", "m4"]
    async with open_checkpointer(pg_url) as saver:
        graph = growing_chat_graph(saver, 6)
        # The sync pool opens lazily, from inside the event loop's thread.
        state = graph.invoke({"messages": []}, thread(thread_id))
        assert len(state["messages"]) == 6
        again = await graph.aget_state(thread(thread_id))
        assert again.values["messages"] == state["messages"]
        history = [s async for s in graph.aget_state_history(thread(thread_id))]
        assert len(history) == len(list(graph.get_state_history(thread(thread_id)))) > 6


def test_async_methods_work_across_successive_event_loops(pg_url: str) -> None:
    with open_checkpointer(pg_url) as saver:
        graph = growing_chat_graph(saver, 2)
        first = asyncio.run(graph.ainvoke({"messages": []}, thread("loops")))
        second = asyncio.run(graph.aget_state(thread("loops")))
    assert second.values["messages"] == first["messages"]


def test_the_async_pool_closes_when_its_event_loop_ends(pg_url: str) -> None:
    # Left open, its connections still being made in the background would be cancelled by
    # asyncio.run and retried by psycopg-pool for minutes: asyncio.run hung.
    with open_checkpointer(pg_url) as saver:
        graph = growing_chat_graph(saver, 2)

        async def run_once() -> Any:
            await graph.ainvoke({"messages": []}, thread("pool-" + uuid.uuid4().hex))
            return await saver.apool()

        pool = asyncio.run(run_once())
        assert pool.closed
        assert asyncio.run(graph.aget_state(thread("loops-after"))).values == {}


# -- one round trip ----------------------------------------------------------------------------


class RoundTrips:
    """Counts ReadyForQuery messages (one per round trip) in a libpq trace of one connection."""

    def __init__(self, conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], file: IO[str]) -> None:
        self.pgconn = conn.pgconn
        self.file = file

    def __enter__(self) -> RoundTrips:
        self.pgconn.trace(self.file.fileno())
        self.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        return self

    def __exit__(self, *exc: object) -> None:
        self.pgconn.untrace()  # flushes the trace

    def read(self) -> tuple[int, str]:
        self.file.seek(0)
        text = self.file.read()
        self.file.seek(0)
        self.file.truncate()
        sent = "\n".join(line for line in text.splitlines() if line.startswith("F"))
        return sum(1 for line in text.splitlines() if line.startswith("B") and "ReadyForQuery" in line), sent


def assert_one_round_trip(trips: RoundTrips, what: str) -> None:
    count, sent = trips.read()
    assert count == 1, f"{what} took {count} round trips:\n{sent}"
    assert "BEGIN" not in sent.upper() and "COMMIT" not in sent.upper(), f"{what} sent a transaction"


def test_put_put_writes_get_tuple_take_one_round_trip_each(pg_url: str) -> None:
    with PostgresCheckpointer(pg_url, pool_size=1) as saver, tempfile.TemporaryFile("w+") as trace:
        thread_id = str(uuid.uuid4())
        parent = None
        # Eight calls each, so psycopg's statement preparation (on the fifth use) is covered too.
        for step in range(8):
            values = {"messages": [message_text(i, 50) for i in range(step + 1)], "count": step}
            with saver.pool.connection() as conn:
                trips = RoundTrips(conn, trace)
            with trips:
                parent = put_checkpoint(saver, thread_id, values, parent=parent)
            assert_one_round_trip(trips, f"put #{step}")
            with trips:
                saver.put_writes(parent, [("messages", ["w"]), ("count", step)], task_id=f"t{step}")
            assert_one_round_trip(trips, f"put_writes #{step}")
            with trips:
                found = saver.get_tuple({"configurable": {"thread_id": thread_id}})
            assert_one_round_trip(trips, f"get_tuple #{step}")
            assert found is not None
            assert found.checkpoint["channel_values"] == values
            assert found.pending_writes == [(f"t{step}", "messages", ["w"]), (f"t{step}", "count", step)]


async def test_async_put_put_writes_get_tuple_take_one_round_trip_each(pg_url: str) -> None:
    async with PostgresCheckpointer(pg_url, pool_size=1) as saver:
        pool = await saver.apool()
        config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
        with tempfile.TemporaryFile("w+") as trace:
            for step in range(7):
                versions: ChannelVersions = {"items": saver.get_next_version(None, None)}
                values = {"items": list(range(step + 1))}
                checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
                async with pool.connection() as conn:
                    trips = RoundTrips(conn, trace)
                with trips:
                    config = await saver.aput(config, checkpoint, generate_metadata(), versions)
                assert_one_round_trip(trips, f"aput #{step}")
                with trips:
                    await saver.aput_writes(config, [("items", [step])], task_id="t")
                assert_one_round_trip(trips, f"aput_writes #{step}")
                with trips:
                    found = await saver.aget_tuple(config)
                assert_one_round_trip(trips, f"aget_tuple #{step}")
                assert found is not None and found.checkpoint["channel_values"] == values
                assert found.pending_writes == [("t", "items", [step])]


LOSING_PREPARED_STATEMENTS = ["DEALLOCATE ALL", "DISCARD ALL", "a rollback by psycopg"]


def lose_prepared_statements(conn: psycopg.Connection[Any], how: str) -> None:
    if how == "a rollback by psycopg":
        # psycopg deallocates every statement of a connection after a rollback if it prepared any
        # itself; on the pool's connections it prepares none.
        with pytest.raises(ZeroDivisionError), conn.transaction():
            conn.execute("SELECT 1", prepare=True)
            raise ZeroDivisionError
    else:
        conn.execute(how)


@pytest.mark.parametrize("how", LOSING_PREPARED_STATEMENTS)
def test_statements_a_connection_lost_are_prepared_again(pg_url: str, how: str) -> None:
    """The checkpointer keeps its statements prepared on each pooled connection. A connection of its
    pool that lost them (a user's statement on ``saver.pool``) prepares each again when it next runs
    it, at the cost of one round trip more, and reads and writes go on as before."""
    thread_id = "prepared-again-" + uuid.uuid4().hex
    with PostgresCheckpointer(pg_url, pool_size=1) as saver, tempfile.TemporaryFile("w+") as trace:
        parent = None
        for step in range(3):
            values = {"messages": [message_text(i, 50) for i in range(step + 1)], "count": step}
            parent = put_checkpoint(saver, thread_id, values, parent=parent)
            saver.put_writes(parent, [("count", step)], task_id=f"t{step}")
            with saver.pool.connection() as conn:
                lose_prepared_statements(conn, how)
                trips = RoundTrips(conn, trace)
            with trips:
                found = saver.get_tuple({"configurable": {"thread_id": thread_id}})
            count, _ = trips.read()
            assert count <= 2, f"a read after {how} took {count} round trips"
            assert found is not None and found.checkpoint["channel_values"] == values
            assert found.pending_writes == [(f"t{step}", "count", step)]


async def test_an_async_connection_that_lost_its_statements_prepares_them_again(pg_url: str) -> None:
    thread_id = "prepared-again-async-" + uuid.uuid4().hex
    async with PostgresCheckpointer(pg_url, pool_size=1) as saver:
        pool = await saver.apool()
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        for step in range(3):
            versions: ChannelVersions = {"items": saver.get_next_version(None, None)}
            values = {"items": list(range(step + 1))}
            checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
            config = await saver.aput(config, checkpoint, generate_metadata(), versions)
            async with pool.connection() as conn:
                await conn.execute("DEALLOCATE ALL")
            found = await saver.aget_tuple(config)
            assert found is not None and found.checkpoint["channel_values"] == values


def test_a_statement_the_server_refuses_leaves_the_connection_working(pg_server: str) -> None:
    """A server error, on a statement's first run on a connection (prepared in the same pipeline)
    and on a later run, is raised as psycopg raises it, and the connection goes on serving."""
    with (
        fresh_database(pg_server, "refused_statement") as url,
        PostgresCheckpointer(url, pool_size=1) as saver,  # the schema is made on open
    ):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE dg_checkpoints ADD CONSTRAINT poison CHECK (thread_id <> 'poison')")
        for attempt in range(3):
            with pytest.raises(psycopg.errors.CheckViolation):
                put_checkpoint(saver, "poison", {"count": attempt})
            config = put_checkpoint(saver, f"fine-{attempt}", {"count": attempt})
            found = saver.get_tuple(config)
            assert found is not None and found.checkpoint["channel_values"] == {"count": attempt}
        assert saver.pool_stats()["sync"]["connections_num"] == 1, "the connection was replaced"


def test_a_process_new_to_a_thread_reads_it_in_one_round_trip(pg_url: str) -> None:
    """Without the item cache, a read takes the thread's items in key order with the checkpoint, and
    when the checkpoint uses few of them (a list replaced at every step) the same statement looks its
    items up instead."""
    grown, replaced = "grown-" + uuid.uuid4().hex, "replaced-" + uuid.uuid4().hex
    with open_checkpointer(pg_url) as writer:
        parent = None
        for n in range(1, 13):
            parent = put_checkpoint(
                writer, grown, {"log": [item(f"line {i}") for i in range(n)]}, parent=parent
            )
        parent = None
        for n in range(12):
            plan = [item(f"step {n}.{i}") for i in range(3)]
            parent = put_checkpoint(writer, replaced, {"plan": plan}, parent=parent)
    with (
        PostgresCheckpointer(pg_url, pool_size=1, item_cache_bytes=0) as reader,
        tempfile.TemporaryFile("w+") as trace,
    ):
        with reader.pool.connection() as conn:
            trips = RoundTrips(conn, trace)
        for _ in range(6):  # past psycopg's preparation of the statements
            with trips:
                found = reader.get_tuple(thread(grown))
            assert_one_round_trip(trips, "a read of a list grown by appends")
            assert found is not None
            assert found.checkpoint["channel_values"]["log"] == [item(f"line {i}") for i in range(12)]
            with trips:
                found = reader.get_tuple(thread(replaced))
            assert_one_round_trip(trips, "a read of a list replaced at every step")
            assert found is not None
            assert found.checkpoint["channel_values"]["plan"] == [item(f"step 11.{i}") for i in range(3)]


def test_pending_writes_that_name_items_are_read_in_one_round_trip(pg_url: str) -> None:
    """A write of a long list names its items: the writer, which keeps them, and a process new to the
    thread, whose statement looks them up with the lists' items, each read the checkpoint and its
    writes in one round trip."""
    thread_id = "named-writes-" + uuid.uuid4().hex
    written = [item(f"answer {i} " + "words " * 150) for i in range(2)]
    for cache_bytes in (DEFAULT_CACHE_BYTES, 0):
        with (
            PostgresCheckpointer(pg_url, pool_size=1, item_cache_bytes=cache_bytes) as saver,
            tempfile.TemporaryFile("w+") as trace,
        ):
            if cache_bytes:
                config = put_checkpoint(saver, thread_id, {"log": [item("question " + "words " * 150)] * 2})
                saver.put_writes(config, [("log", written)], task_id="task-1")
            with saver.pool.connection() as conn:
                trips = RoundTrips(conn, trace)
            for _ in range(6):  # past psycopg's preparation of the statements
                with trips:
                    found = saver.get_tuple(config)
                assert_one_round_trip(trips, "a read of a checkpoint whose write names items")
                assert found is not None and found.pending_writes == [("task-1", "log", written)]


def put_growing_log(url: str, thread_id: str, steps: int) -> None:
    """``steps`` checkpoints whose ``log`` list grows by one item each."""
    with open_checkpointer(url) as writer:
        parent = None
        for n in range(1, steps + 1):
            parent = put_checkpoint(
                writer, thread_id, {"log": [item(f"line {i}") for i in range(n)]}, parent=parent
            )


def test_a_page_of_history_takes_one_round_trip_and_one_more_for_the_items_it_lacks(pg_url: str) -> None:
    thread_id = "listed-" + uuid.uuid4().hex
    put_growing_log(pg_url, thread_id, 12)
    for item_cache_bytes in (0, 1 << 20):
        with (
            PostgresCheckpointer(pg_url, pool_size=1, item_cache_bytes=item_cache_bytes) as reader,
            tempfile.TemporaryFile("w+") as trace,
        ):
            with reader.pool.connection() as conn:
                trips = RoundTrips(conn, trace)
            for listing in range(6):  # past psycopg's preparation of the statements
                with trips:
                    page = list(reader.list(thread(thread_id), limit=5))
                count, sent = trips.read()
                # Without the items at hand, a second statement fetches them; a cache holds them after
                # the first listing.
                expected = 2 if item_cache_bytes == 0 or listing == 0 else 1
                assert count == expected, f"listing #{listing} took {count} round trips:\n{sent}"
                assert "BEGIN" not in sent.upper() and "COMMIT" not in sent.upper(), (
                    "a listing sent a transaction"
                )
                assert [len(t.checkpoint["channel_values"]["log"]) for t in page] == [12, 11, 10, 9, 8]


@pytest.mark.parametrize("calls", ["sync", "async"])
@pytest.mark.parametrize("read", ["list", "get_tuple"])
def test_a_read_whose_thread_is_deleted_between_its_two_statements_is_read_again(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, read: str, calls: str
) -> None:
    """A page of ``list()`` reads its rows, then the items it lacks, by two statements, and so does a
    ``get_tuple`` of a thread whose items this process holds but one another process added. When the
    thread is deleted in between (by another process), the read is done again in one snapshot, which
    finds nothing."""
    thread_id = "deleted-while-read-" + uuid.uuid4().hex
    put_growing_log(pg_url, thread_id, 5)
    fetch_items = CheckpointSQL._chunks_of
    deleted: list[str] = []
    armed = False

    def deleted_before_the_items_are_fetched(self: CheckpointSQL, *args: Any) -> Any:
        if armed and not deleted:
            with open_checkpointer(pg_url) as other_process:
                other_process.delete_thread(thread_id)
            deleted.append(thread_id)
        return (yield from fetch_items(self, *args))

    monkeypatch.setattr(CheckpointSQL, "_chunks_of", deleted_before_the_items_are_fetched)

    async def read_async(reader: PostgresCheckpointer) -> Any:
        if read == "list":
            return [listed async for listed in reader.alist(thread(thread_id))]
        return await reader.aget_tuple(thread(thread_id))

    with PostgresCheckpointer(pg_url) as reader:
        if read == "get_tuple":
            assert reader.get_tuple(thread(thread_id)) is not None  # its items are now held
            with open_checkpointer(pg_url) as other_process:  # adds one item
                put_checkpoint(other_process, thread_id, {"log": [item(f"line {i}") for i in range(6)]})
        armed = True
        if calls == "sync":
            found = (
                list(reader.list(thread(thread_id)))
                if read == "list"
                else reader.get_tuple(thread(thread_id))
            )
        else:
            found = asyncio.run(read_async(reader))
    assert deleted == [thread_id]
    assert found == ([] if read == "list" else None)


# -- storage ---------------------------------------------------------------------------------------


def test_growing_thread_stores_each_message_once(pg_url: str) -> None:
    steps = 200
    thread_id = "growing-" + uuid.uuid4().hex
    with open_checkpointer(pg_url) as saver:
        state = growing_chat_graph(saver, steps).invoke({"messages": []}, thread(thread_id))
    assert len(state["messages"]) == steps
    text_bytes = sum(len(m.content) for m in state["messages"])
    chunks, chunk_bytes = psycopg.connect(pg_url).execute(
        "SELECT count(*), sum(octet_length(data)) FROM dg_checkpoint_chunks"
        " WHERE thread_id = %s AND type NOT LIKE 'msgpack-items%%'",
        (thread_id,),
    ).fetchone() or (0, 0)
    group_bytes = scalar(
        pg_url,
        "SELECT sum(octet_length(data)) FROM dg_checkpoint_chunks"
        " WHERE thread_id = %s AND type LIKE 'msgpack-items%%'",
        thread_id,
    )
    assert chunks == steps, "each distinct message is one chunk"
    assert chunk_bytes < 1.5 * text_bytes, "a chunk is about the size of its message"
    checkpoints = scalar(pg_url, "SELECT count(*) FROM dg_checkpoints WHERE thread_id = %s", thread_id)
    message_versions = scalar(
        pg_url,
        "SELECT count(*) FROM dg_checkpoint_blobs WHERE thread_id = %s AND channel = 'messages'",
        thread_id,
    )
    assert checkpoints > steps
    assert message_versions <= steps + 1, "one stored value per version, not one per checkpoint"
    # Storing each checkpoint's full list would take about steps²/2 messages' worth of bytes.
    quadratic = sum(len(m.content) for m in state["messages"]) * steps / 2
    stored = scalar(
        pg_url,
        "SELECT sum(octet_length(data)) + sum(coalesce(octet_length(refs), 0)) FROM dg_checkpoint_blobs"
        " WHERE thread_id = %s",
        thread_id,
    )
    assert group_bytes < chunk_bytes, "each message is in one group of items at most"
    assert chunk_bytes + group_bytes + stored < quadratic / 20
    # Item hashes too: a list that grows by appends stores the tails, not every full list again.
    all_refs = scalar(
        pg_url, "SELECT sum(octet_length(refs)) FROM dg_checkpoint_blobs WHERE thread_id = %s", thread_id
    )
    assert all_refs < HASH_BYTES * steps * steps / 2 / 4


def test_list_items_are_deduplicated_per_thread(saver: PostgresCheckpointer, pg_url: str) -> None:
    first, second = "dedup-a-" + uuid.uuid4().hex, "dedup-b-" + uuid.uuid4().hex
    cfg = put_checkpoint(saver, first, {"items": [item("x"), item("y")]})
    cfg = put_checkpoint(saver, first, {"items": [item("x"), item("y"), item("z")]}, parent=cfg)
    put_checkpoint(saver, first, {"items": [item("z"), item("x"), item("x")]}, parent=cfg)
    put_checkpoint(saver, second, {"items": [item("x")]})
    count = "SELECT count(*) FROM dg_checkpoint_chunks WHERE thread_id = %s"
    assert scalar(pg_url, count, first) == 3
    assert scalar(pg_url, count, second) == 1
    latest = saver.get_tuple({"configurable": {"thread_id": first}})
    assert latest is not None and latest.checkpoint["channel_values"]["items"] == [
        item("z"),
        item("x"),
        item("x"),
    ]
    assert [
        t.checkpoint["channel_values"]["items"] for t in saver.list({"configurable": {"thread_id": first}})
    ] == [
        [item("z"), item("x"), item("x")],
        [item("x"), item("y"), item("z")],
        [item("x"), item("y")],
    ]


def chunk_texts(saver: PostgresCheckpointer, pg_url: str, thread_id: str) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT type, data FROM dg_checkpoint_chunks WHERE thread_id = %s", (thread_id,)
        ).fetchall()
    codec = Codec(saver.serde)
    return {codec.loads(type_, data, thread_id=thread_id, checkpoint_id=None) for type_, data in rows}


def test_prune_removes_chunks_and_blobs_nothing_uses(saver: PostgresCheckpointer, pg_url: str) -> None:
    thread_id = "prune-" + uuid.uuid4().hex
    cfg = put_checkpoint(saver, thread_id, {"items": [item("old-1"), item("shared")], "note": "first"})
    cfg = put_checkpoint(
        saver, thread_id, {"items": [item("shared"), item("new-1")], "note": "second"}, parent=cfg
    )
    saver.put_writes(cfg, [("items", ["pending"])], task_id="t")
    assert chunk_texts(saver, pg_url, thread_id) == {item("old-1"), item("shared"), item("new-1")}

    saver.prune([thread_id], strategy="keep_latest")
    assert chunk_texts(saver, pg_url, thread_id) == {item("shared"), item("new-1")}
    blobs = scalar(pg_url, "SELECT count(*) FROM dg_checkpoint_blobs WHERE thread_id = %s", thread_id)
    assert blobs == 1  # the kept list; the short note is stored in the checkpoint row
    kept = saver.get_tuple({"configurable": {"thread_id": thread_id}})
    assert kept is not None
    assert kept.checkpoint["channel_values"] == {"items": [item("shared"), item("new-1")], "note": "second"}
    assert kept.parent_config is None and kept.pending_writes == [("t", "items", ["pending"])]

    saver.prune([thread_id], strategy="delete")
    for table in TABLES:
        assert scalar(pg_url, f"SELECT count(*) FROM {table} WHERE thread_id = %s", thread_id) == 0


def test_delete_for_runs_removes_what_only_those_runs_used(saver: PostgresCheckpointer, pg_url: str) -> None:
    thread_id = "runs-" + uuid.uuid4().hex
    cfg = put_checkpoint(saver, thread_id, {"items": [item("a"), item("b")]}, run_id="run-1")
    cfg = put_checkpoint(saver, thread_id, {"items": [item("b"), item("c")]}, parent=cfg, run_id="run-2")
    put_checkpoint(saver, thread_id, {"items": [item("d")]}, parent=cfg, run_id="run-3")
    saver.delete_for_runs(["run-1", "run-3"])
    assert chunk_texts(saver, pg_url, thread_id) == {item("b"), item("c")}
    left = list(saver.list({"configurable": {"thread_id": thread_id}}))
    assert [t.metadata["run_id"] for t in left] == ["run-2"]
    assert left[0].checkpoint["channel_values"] == {"items": [item("b"), item("c")]}
    assert left[0].parent_config is None


def test_lists_stored_as_tails_survive_prune(saver: PostgresCheckpointer, pg_url: str) -> None:
    thread_id = "tails-" + uuid.uuid4().hex
    cfg = None
    for n in range(1, 40):
        cfg = put_checkpoint(saver, thread_id, {"items": [item(f"item-{i}") for i in range(n)]}, parent=cfg)
    tails = "SELECT count(*) FROM dg_checkpoint_blobs WHERE thread_id = %s AND base IS NOT NULL"
    assert scalar(pg_url, tails, thread_id) > 30
    saver.prune([thread_id], strategy="keep_latest")
    kept = saver.get_tuple({"configurable": {"thread_id": thread_id}})
    assert kept is not None and kept.checkpoint["channel_values"]["items"] == [
        item(f"item-{i}") for i in range(39)
    ]
    assert scalar(pg_url, "SELECT count(*) FROM dg_checkpoint_blobs WHERE thread_id = %s", thread_id) <= 2
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM dg_checkpoint_blobs WHERE thread_id = %s AND base IS NULL", (thread_id,))
    # A reader that has not seen the thread (``saver`` remembers the blobs it just read).
    with PostgresCheckpointer(pg_url) as fresh, pytest.raises(CorruptCheckpointError, match="items"):
        fresh.get_tuple({"configurable": {"thread_id": thread_id}})


def test_special_writes_are_replaced_and_regular_ones_kept(saver: PostgresCheckpointer) -> None:
    cfg = put_checkpoint(saver, "writes-" + uuid.uuid4().hex, {"n": 1})
    saver.put_writes(cfg, [("n", 2), ("__error__", "first"), ("__error__", "second")], task_id="t")
    saver.put_writes(cfg, [("n", 3), ("__error__", "third")], task_id="t")
    found = saver.get_tuple(cfg)
    assert found is not None
    assert sorted(found.pending_writes or []) == [("t", "__error__", "third"), ("t", "n", 2)]


def test_pending_writes_come_back_in_the_order_langgraph_applies_them(saver: PostgresCheckpointer) -> None:
    """By task path, then task id, then index, compared as Python compares strings (codepoints,
    capitals before small letters, "é" after "z"), whatever order they were saved in."""
    cfg = put_checkpoint(saver, "order-" + uuid.uuid4().hex, {"n": 1})
    tasks = [
        ("t2", "~pull, é"),
        ("t1", "~pull, z"),
        ("t3", "~pull, Z"),
        ("t0", "~pull, z"),
        ("t4", "~push, 0"),
    ]
    for task_id, path in tasks:
        saver.put_writes(cfg, [("n", f"{task_id} first"), ("n", f"{task_id} second")], task_id, path)
    saver.put_writes(cfg, [("__error__", "boom")], "t1", "~pull, z")  # a special write: index -1
    expected = sorted(
        [(path, task_id, i, value) for task_id, path in tasks for i, value in enumerate(("first", "second"))]
        + [("~pull, z", "t1", -1, "boom")],
        key=lambda w: writes_sort_key(w[0], w[1], w[2]),
    )
    found = saver.get_tuple(cfg)
    assert found is not None
    assert [(task_id, value) for task_id, _, value in found.pending_writes or []] == [
        (task_id, value if i < 0 else f"{task_id} {value}") for _, task_id, i, value in expected
    ]
    listed = next(iter(saver.list(cfg)))
    assert listed.pending_writes == found.pending_writes


def test_copy_thread_copies_everything_it_needs(saver: PostgresCheckpointer) -> None:
    source, target = "copy-src-" + uuid.uuid4().hex, "copy-dst-" + uuid.uuid4().hex
    cfg = put_checkpoint(saver, source, {"items": [item("a")], "n": 1})
    cfg = put_checkpoint(saver, source, {"items": [item("a"), item("b")], "n": 2}, parent=cfg)
    saver.put_writes(cfg, [("n", 3)], task_id="t")
    before = list(saver.list({"configurable": {"thread_id": source}}))
    saver.copy_thread(source, target)
    saver.delete_thread(source)
    assert saver.get_tuple({"configurable": {"thread_id": source}}) is None
    after = list(saver.list({"configurable": {"thread_id": target}}))

    def strip(t: CheckpointTuple) -> tuple[Any, ...]:
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        return t.checkpoint, t.metadata, parent, t.pending_writes

    assert [strip(t) for t in after] == [strip(t) for t in before]


def test_list_is_served_by_indexes(saver: PostgresCheckpointer, pg_url: str) -> None:
    sql_of: Callable[..., Any] = saver._sql.list_checkpoints
    by_thread = next(
        sql_of({"configurable": {"thread_id": "t"}}, None, {"configurable": {"checkpoint_id": "z"}}, 5).steps
    )
    across = next(sql_of(None, {"source": "loop", "step": 3}, None, None).steps)
    with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        for statement, index in (
            (by_thread, "dg_checkpoints_newest_first"),
            (across, "dg_checkpoints_metadata"),
        ):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement.sql, statement.params))
            assert index in plan, plan


# -- errors ------------------------------------------------------------------------------------


def test_corrupt_stored_values_raise_naming_thread_and_checkpoint(
    saver: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "corrupt-" + uuid.uuid4().hex
    # A dict is stored as a blob of its own (a short string would be in the checkpoint row).
    cfg = put_checkpoint(saver, thread_id, {"note": {"text": "fine"}, "items": [item("one"), item("two")]})
    checkpoint_id = cfg["configurable"]["checkpoint_id"]
    corruptions = [
        "UPDATE dg_checkpoint_blobs SET data = '\\xdeadbeef' WHERE thread_id = %s AND channel = 'note'",
        "UPDATE dg_checkpoint_blobs SET type = 'no-such-type' WHERE thread_id = %s AND channel = 'note'",
        "UPDATE dg_checkpoints SET checkpoint = '\\x00ff' WHERE thread_id = %s",
        "DELETE FROM dg_checkpoint_chunks WHERE thread_id = %s",
    ]
    for corruption in corruptions:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(corruption, (thread_id,))
        with pytest.raises(CorruptCheckpointError) as raised:
            saver.get_tuple(cfg)
        assert thread_id in str(raised.value) and checkpoint_id in str(raised.value), corruption
        with pytest.raises(CorruptCheckpointError):
            list(saver.list({"configurable": {"thread_id": thread_id}}))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_server_fails_fast_naming_the_host() -> None:
    url = f"postgresql://nobody@127.0.0.1:{closed_port()}/nothing"
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1"), open_checkpointer(url):
        pass
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1"):
        async with open_checkpointer(url):
            pass
    lazy = PostgresCheckpointer(url)
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1"):
        await lazy.aget_tuple({"configurable": {"thread_id": "t"}})


def test_bad_arguments_are_refused_clearly(saver: PostgresCheckpointer) -> None:
    with pytest.raises(ValueError, match="thread"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["t"], strategy="newest")
    with pytest.raises(TypeError, match="string"):
        saver.prune("t")
    with pytest.raises(InvalidURLError, match="connection string"):
        PostgresCheckpointer("host=localhost dbname")
    with pytest.raises(ValueError, match="pool_size"):
        PostgresCheckpointer("postgresql://u@localhost/db", pool_size=0)


# -- concurrency -------------------------------------------------------------------------------


def _open_and_put(url: str, thread_id: str) -> None:
    with open_checkpointer(url) as saver:
        put_checkpoint(saver, thread_id, {"items": [thread_id]})


def test_ten_processes_open_a_fresh_database_at_once(pg_server: str) -> None:
    with fresh_database(pg_server, "ten_openers") as url:
        # Forked from a server that has imported everything, the ten start within milliseconds.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(
            ["durable_graph.checkpointers.postgres", "tests.test_postgres_checkpointer"]
        )
        procs = [ctx.Process(target=_open_and_put, args=(url, f"p{i}")) for i in range(10)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 10
        assert scalar(url, "SELECT count(DISTINCT thread_id) FROM dg_checkpoints") == 10
        versions = "SELECT array_agg(version) FROM durable_graph_migrations WHERE component = 'checkpoints'"
        assert sorted(scalar(url, versions)) == [m.version for m in MIGRATIONS]  # each applied once


async def test_concurrent_async_puts_use_several_connections_at_once(pg_url: str) -> None:
    """Holding a lock every put needs makes the puts wait in the server, where we count them."""
    prefix = "parallel-" + uuid.uuid4().hex
    async with open_checkpointer(pg_url) as saver:
        blocker = await psycopg.AsyncConnection.connect(pg_url)
        watcher = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
        try:
            await blocker.execute("LOCK TABLE dg_checkpoints IN EXCLUSIVE MODE")
            puts = [
                asyncio.ensure_future(
                    saver.aput(
                        {"configurable": {"thread_id": f"{prefix}{i}", "checkpoint_ns": ""}},
                        generate_checkpoint(),
                        generate_metadata(),
                        {},
                    )
                )
                for i in range(20)
            ]
            most = 0
            for _ in range(200):  # up to 20 s, less than the pool's 30 s wait for a connection
                cur = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = %s AND wait_event_type = 'Lock'",
                    (APPLICATION_NAME,),
                )
                most = max(most, (await cur.fetchone() or (0,))[0])
                if most >= 5:
                    break
                await asyncio.sleep(0.1)
            await blocker.commit()
            await asyncio.gather(*puts)
        finally:
            await blocker.close()
            await watcher.close()
        assert most > 1, "async puts were serialized onto one connection"
        for i in range(20):
            assert await saver.aget_tuple({"configurable": {"thread_id": f"{prefix}{i}"}}) is not None
