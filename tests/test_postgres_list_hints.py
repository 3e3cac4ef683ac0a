"""A put sends only the list items its parent's list lacks, trusting what this client last wrote or
read of the thread. When the database no longer holds that parent (another process deleted or
pruned the thread), the server refuses the shortcut and the client sends every item: nothing may go
missing. A read of that checkpoint leaves out the blob rows it remembers. Pending writes commit
without waiting for the disk, and only them."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypedDict

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, create_checkpoint, empty_checkpoint
from langgraph.graph import END, START, StateGraph

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.checkpointers.postgres import pool as pool_module
from durable_graph.checkpointers.postgres.lists import (
    ListMemory,
    Remembered,
    StoredList,
    store_list,
    to_group,
)
from durable_graph.checkpointers.postgres.sql import ListNames, _unpacked
from tests.checkpoint_graphs import item


def put_items(saver: BaseCheckpointSaver, config: RunnableConfig, items: list[str], step: int) -> Any:
    previous = saver.get_tuple(config)
    base = previous.checkpoint if previous else empty_checkpoint()
    checkpoint = create_checkpoint(base, None, step)
    version = saver.get_next_version(base["channel_versions"].get("items"), None)
    checkpoint["channel_values"] = {"items": items}
    checkpoint["channel_versions"] = {"items": version}
    return saver.put(config, checkpoint, {"step": step, "source": "loop", "parents": {}}, {"items": version})


def test_a_put_whose_parent_was_deleted_elsewhere_stores_every_item(pg_url: str) -> None:
    thread: RunnableConfig = {"configurable": {"thread_id": "hint-" + uuid.uuid4().hex, "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as writer, open_checkpointer(pg_url) as other:
        first = put_items(writer, thread, [item("a"), item("b")], 0)
        second = put_items(writer, first, [item("a"), item("b"), item("c")], 1)  # sends only "c"
        other.delete_thread(thread["configurable"]["thread_id"])  # another process
        # the writer still runs from its parent in memory, as a graph run does
        version = writer.get_next_version(None, None)
        checkpoint = create_checkpoint(empty_checkpoint(), None, 2)
        checkpoint["channel_values"] = {"items": [item("a"), item("b"), item("c"), item("d")]}
        checkpoint["channel_versions"] = {"items": version}
        third = writer.put(
            second, checkpoint, {"step": 2, "source": "loop", "parents": {}}, {"items": version}
        )

    with open_checkpointer(pg_url) as reader:
        saved = reader.get_tuple(third)
    assert saved is not None
    assert saved.checkpoint["channel_values"]["items"] == [item("a"), item("b"), item("c"), item("d")]


def stored_rows(pg_url: str, thread_id: str) -> tuple[int, list[tuple[str, str | None, int]]]:
    """(chunks, [(version, base, hashes in the row) per blob of channel items, oldest first])."""
    with psycopg.connect(pg_url) as conn:
        chunks = conn.execute("SELECT count(*) FROM dg_checkpoint_chunks WHERE thread_id = %s", (thread_id,))
        blobs = conn.execute(
            "SELECT version, base, length(refs) / 16 FROM dg_checkpoint_blobs"
            " WHERE thread_id = %s AND channel = 'items' ORDER BY version",
            (thread_id,),
        )
        return chunks.fetchone()[0], blobs.fetchall()  # type: ignore[index]


def test_a_process_that_read_the_thread_extends_its_lists_without_resending(pg_url: str) -> None:
    thread_id = "seeded-" + uuid.uuid4().hex
    thread: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as writer:
        config = put_items(writer, thread, [item("a"), item("b")], 0)
        put_items(writer, config, [item("a"), item("b"), item("c")], 1)
    # A new process (a resumed run) reads the latest checkpoint, then puts a child with one more item.
    with open_checkpointer(pg_url) as resumed:
        latest = resumed.get_tuple(thread)
        assert latest is not None
        put_items(resumed, latest.config, [item("a"), item("b"), item("c"), item("d")], 2)
        found = resumed.get_tuple(thread)
    assert found is not None and found.checkpoint["channel_values"]["items"] == [
        item("a"),
        item("b"),
        item("c"),
        item("d"),
    ]
    chunks, blobs = stored_rows(pg_url, thread_id)
    assert chunks == 4
    (full_version, no_base, full_hashes), *tails = blobs
    assert (no_base, full_hashes) == (None, 2)
    assert [(base, hashes) for _, base, hashes in tails] == [(full_version, 1), (full_version, 2)], (
        "each child stores only its tail past the full list"
    )


def test_a_list_that_is_not_an_extension_is_stored_in_full(pg_url: str) -> None:
    thread_id = "rewritten-" + uuid.uuid4().hex
    thread: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as saver:
        config = put_items(saver, thread, [item("a"), item("b"), item("c")], 0)
        config = put_items(saver, config, [item("a"), item("x"), item("c")], 1)  # an item replaced
        put_items(saver, config, [item("x")], 2)  # items removed
        found = saver.get_tuple(thread)
    assert found is not None and found.checkpoint["channel_values"]["items"] == [item("x")]
    _, blobs = stored_rows(pg_url, thread_id)
    assert [(base, hashes) for _, base, hashes in blobs] == [(None, 3), (None, 3), (None, 1)]


def test_pending_writes_leave_the_connection_committing_synchronously(pg_url: str) -> None:
    thread: RunnableConfig = {
        "configurable": {"thread_id": "writes-" + uuid.uuid4().hex, "checkpoint_ns": ""}
    }
    with PostgresCheckpointer(pg_url, pool_size=1) as saver:
        config = put_items(saver, thread, [item("a")], 0)
        saver.put_writes(config, [("items", [item("b")])], task_id="task")
        with saver.pool.connection() as conn:  # the one connection put_writes used
            row = conn.execute("SHOW synchronous_commit").fetchone()
        found = saver.get_tuple(config)
    assert row == ("on",), "only the pending writes' own transaction skips the flush"
    assert found is not None and found.pending_writes == [("task", "items", [item("b")])]


def refs(*names: str) -> bytes:
    return b"".join(name.encode().ljust(16, b"_") for name in names)


def test_store_list_keeps_a_short_tail_against_the_full_version_it_extends() -> None:
    full, known = store_list("v1", refs("a", "b"), None)
    assert (full.base, known) == (None, 0)
    tail, known = store_list("v2", refs("a", "b", "c"), full)
    assert (tail.base, tail.base_length, tail.stored_refs, known) == ("v1", 32, refs("c"), 32)
    longer, known = store_list("v3", refs("a", "b", "c", "d"), tail)
    assert (longer.base, longer.stored_refs, known) == ("v1", refs("c", "d"), 48)
    rewritten, known = store_list("v4", refs("x", "b", "c"), longer)
    assert (rewritten.base, rewritten.stored_refs, known) == (None, refs("x", "b", "c"), 0)


def test_store_list_starts_a_new_full_version_once_the_tail_is_long() -> None:
    base = StoredList("v1", refs(*map(str, range(100))))
    within, _ = store_list("v2", refs(*map(str, range(116))), base)  # 16 more: max(16, sqrt(100))
    beyond, known = store_list("v3", refs(*map(str, range(117))), base)
    assert within.base == "v1"
    assert (beyond.base, beyond.stored_refs, known) == (None, beyond.refs, 1600)


def test_store_list_passes_groups_on_while_the_list_begins_with_their_items() -> None:
    lines = [str(i) for i in range(40)]
    base = StoredList("v1", refs(*lines[:20]), groups=refs("g1"), grouped=18)
    tail, known = store_list("v2", refs(*lines[:25]), base)
    assert (tail.base, tail.groups, tail.grouped, to_group(tail, known)) == ("v1", refs("g1"), 18, range(0))
    full, known = store_list("v3", refs(*lines[:37]), tail)  # past the tail's 16: a full version
    assert (full.base, full.groups, full.grouped) == (None, refs("g1"), 18)
    assert to_group(full, known) == range(18, 37)
    changed = refs(*lines[:24], *(f"y{i}" for i in range(10)))  # the tail's last item replaced
    rewritten, known = store_list("v4", changed, tail)
    assert (rewritten.base, rewritten.groups, to_group(rewritten, known)) == (None, refs("g1"), range(18, 34))
    edited, known = store_list("v5", refs("x", *lines[1:30]), tail)  # changed inside the group
    assert (edited.groups, edited.grouped, to_group(edited, known)) == (b"", 0, range(0))


def test_only_a_list_that_grew_is_grouped() -> None:
    def numbered(start: int, stop: int) -> bytes:
        return refs(*map(str, range(start, stop)))

    grown, known = store_list("v2", numbered(0, 40), StoredList("v1", numbered(0, 20)))
    assert (grown.base, to_group(grown, known)) == (None, range(0, 40))
    few, known = store_list("v2", numbered(0, 30), StoredList("v1", numbered(0, 20)))
    assert (few.base, to_group(few, known)) == ("v1", range(0))  # a tail of 10 on 20
    window, known = store_list("v2", numbered(1, 21), StoredList("v1", numbered(0, 20)))
    assert to_group(window, known) == range(0)  # a sliding window replaces its list at every step
    first, known = store_list("v1", numbered(0, 40), None)
    assert to_group(first, known) == range(0)


def test_a_list_is_read_by_its_groups_only_where_its_items_are_not_held() -> None:
    items = [refs(name) for name in "abcde"]
    groups = (refs("g1"),)
    grouped = ListNames(b"".join(items), groups, 3)  # the group holds a, b and c
    assert grouped.lacking(set()) == [*groups, items[3], items[4]]
    assert grouped.lacking(set(items)) == []
    assert grouped.lacking({items[4]}) == [*groups, items[3]]
    assert grouped.lacking({items[0], items[4]}) == [*groups, items[3]], "an item of the group missing"
    assert not grouped.by_groups({items[0]}) and grouped.by_groups({items[4]})
    plain = ListNames(b"".join(items))
    assert plain.lacking({items[0], items[2]}) == [items[1], items[3], items[4]]
    assert not plain.by_groups(set())


def test_list_memory_is_bounded_and_only_answers_for_the_checkpoint_it_holds() -> None:
    memory = ListMemory(max_threads=2, max_bytes=64)
    lists = {"items": StoredList("v1", refs("a"))}
    memory.remember(("t1", ""), "c1", Remembered(lists, {}))
    assert memory.of(("t1", ""), "c1").lists == lists
    assert memory.of(("t1", ""), "c0").lists == {} and memory.of(("t1", ""), None).lists == {}
    memory.remember(("t2", ""), "c1", Remembered(lists, {}))
    memory.remember(("t3", ""), "c1", Remembered(lists, {}))  # a third thread: the oldest is dropped
    assert memory.of(("t1", ""), "c1").lists == {}
    big = {"items": StoredList("v1", refs("a", "b", "c", "d", "e"))}
    memory.remember(("t4", ""), "c1", Remembered(big, {}))
    assert memory.of(("t4", ""), "c1").lists == {}, "an entry larger than the bound is not kept"
    assert memory.of(("t3", ""), "c1").lists == lists


def test_what_a_put_remembers_is_what_a_read_of_its_checkpoint_would(pg_url: str) -> None:
    """A read of the checkpoint a process last put or read does not remember it again; that is
    only sound if both would remember the same lists and cleared versions, which this checks on a
    graph with a growing list and trigger channels that a step clears."""

    class State(TypedDict, total=False):
        items: Annotated[list[str], operator.add]
        turn: int

    builder = StateGraph(State)
    builder.add_node("first", lambda state: {"items": [item("a")], "turn": state.get("turn", 0) + 1})
    builder.add_node("second", lambda state: {"items": [item("b")]})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    thread: RunnableConfig = {"configurable": {"thread_id": "remember-" + uuid.uuid4().hex}}
    with open_checkpointer(pg_url) as writer, PostgresCheckpointer(pg_url) as reader:
        graph = builder.compile(checkpointer=writer)
        key = (thread["configurable"]["thread_id"], "")
        for _ in range(3):
            graph.invoke({"items": [item("in")]}, thread, durability="sync")
            latest = writer.get_tuple(thread)
            assert latest is not None
            checkpoint_id = latest.checkpoint["id"]
            put = writer._sql._lists.of(key, checkpoint_id)
            assert put.lists and put.empty, "the writer remembers its list and cleared versions"
            reader.get_tuple(thread)
            assert reader._sql._lists.of(key, checkpoint_id) == put


@contextmanager
def rows_read() -> Iterator[list[tuple[Any, ...]]]:
    """The rows the checkpointers' sync reads of a checkpoint (``get_tuple``) fetch meanwhile, with
    their packed columns apart."""
    seen: list[tuple[Any, ...]] = []
    original = pool_module._drive

    def recording(conn: Any, op: Any) -> Any:
        steps = op.steps

        def recorded() -> Any:
            statement = next(steps)
            while True:
                rows = yield statement
                if statement.sql.lstrip().startswith("SELECT c.thread_id"):
                    seen.extend(map(_unpacked, rows))
                try:
                    statement = steps.send(rows)
                except StopIteration as stop:
                    return stop.value

        op.steps = recorded()
        return original(conn, op)

    pool_module._drive = recording
    try:
        yield seen
    finally:
        pool_module._drive = original


def test_a_checkpoint_read_again_comes_without_the_blobs_remembered_of_it(pg_url: str) -> None:
    """The process that put or read a checkpoint whose values stored apart are all lists remembers
    what their blob rows hold, so reading it again leaves them out; when another process has put
    that checkpoint again since, with other versions, the read notices and reads the blobs."""
    thread: RunnableConfig = {"configurable": {"thread_id": "known-" + uuid.uuid4().hex, "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as writer, open_checkpointer(pg_url) as other:
        first = put_items(writer, thread, [item("a"), item("b")], 0)
        with rows_read() as rows:
            saved = writer.get_tuple(first)
        assert saved is not None and saved.checkpoint["channel_values"]["items"] == [item("a"), item("b")]
        assert len(rows) == 1 and rows[0][7] == ["items"] and rows[0][9] is None, "blob columns left out"

        again = other.get_tuple(first)
        assert again is not None
        checkpoint = again.checkpoint
        version = other.get_next_version(checkpoint["channel_versions"]["items"], None)
        checkpoint["channel_values"] = {"items": [item("x"), item("y"), item("z")]}
        checkpoint["channel_versions"] = {"items": version}
        other.put(thread, checkpoint, {"step": 0, "source": "loop", "parents": {}}, {"items": version})

        with rows_read() as rows:
            reread = writer.get_tuple(first)
        assert reread is not None and reread.checkpoint["channel_values"]["items"] == [
            item("x"),
            item("y"),
            item("z"),
        ]
        assert rows[0][9] is None and rows[1][9] == ("items",), "left out, then read when not as remembered"


def test_a_checkpoint_with_other_values_stored_apart_is_read_with_its_blobs(pg_url: str) -> None:
    thread: RunnableConfig = {"configurable": {"thread_id": "known-" + uuid.uuid4().hex, "checkpoint_ns": ""}}
    long_note = "n" * 1000  # stored apart, not a list
    with open_checkpointer(pg_url) as writer:
        checkpoint = create_checkpoint(empty_checkpoint(), None, 0)
        versions = {"items": writer.get_next_version(None, None), "note": writer.get_next_version(None, None)}
        checkpoint["channel_values"] = {"items": [item("a")], "note": long_note}
        checkpoint["channel_versions"] = dict(versions)
        written = writer.put(thread, checkpoint, {"step": 0, "source": "loop", "parents": {}}, versions)
        for _ in range(2):
            with rows_read() as rows:
                saved = writer.get_tuple(written)
            assert saved is not None and saved.checkpoint["channel_values"] == {
                "items": [item("a")],
                "note": long_note,
            }
            assert sorted(rows[0][9]) == ["items", "note"]
