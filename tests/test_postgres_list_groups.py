"""Groups of list items: a full version of a long list names groups that hold its leading items as
one stored array each, so a process new to the thread reads a few rows instead of one per item.

Reads go through checkpointers new to the thread, as another process's would: one that keeps no
items (``item_cache_bytes=0``), or a new one whose item cache then shows what the read fetched.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig

from durable_graph.checkpointers.codec import GROUP_TYPE, HASH_BYTES
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.errors import CorruptCheckpointError
from tests.checkpoint_graphs import item
from tests.test_postgres_stored_forms import put


def grow(
    saver: PostgresCheckpointer, thread_id: str, lengths: range, parent: RunnableConfig | None = None
) -> list[tuple[RunnableConfig, list[str]]]:
    """Puts a list that grows by appends to each of ``lengths``: the configs and lists put."""
    written = []
    for n in lengths:
        value = [item(f"line {i}") for i in range(n)]
        parent = put(saver, thread_id, {"log": value}, ["log"], parent)
        written.append((parent, value))
    return written


def groups_of(url: str, thread_id: str) -> list[tuple[int, int]]:
    """``(groups named, items they hold)`` of each list version stored in full, oldest first."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT coalesce(length(groups), 0) / %s, grouped FROM dg_checkpoint_blobs"
            " WHERE thread_id = %s AND base IS NULL ORDER BY version",
            (HASH_BYTES, thread_id),
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def group_rows(url: str, thread_id: str) -> list[tuple[bytes, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT hash, type FROM dg_checkpoint_chunks WHERE thread_id = %s AND type LIKE %s",
            (thread_id, GROUP_TYPE + "%"),
        ).fetchall()
    return [(bytes(row[0]), row[1]) for row in rows]


def log_of(reader: PostgresCheckpointer, config: RunnableConfig) -> list[str]:
    found = reader.get_tuple(config)
    assert found is not None
    return list(found.checkpoint["channel_values"]["log"])


def test_a_long_list_is_read_by_a_new_process_as_its_groups_and_the_items_past_them(
    saver: PostgresCheckpointer, pg_url: str
) -> None:
    """200 appends: each full version adds a group of the items since the last one, so every item
    is in one group; a new process reads the newest list as those groups and the few items past
    them, and every older version and the history read back the same."""
    thread_id = "grouped-" + uuid.uuid4().hex
    written = grow(saver, thread_id, range(1, 201))
    groups = groups_of(pg_url, thread_id)
    assert groups[0] == (0, 0)  # a first version of one item holds no group
    assert [count for count, _ in groups[1:]] == list(range(1, len(groups)))  # one more per version
    held_items = [grouped for _, grouped in groups[1:]]
    assert held_items == sorted(set(held_items))  # each holds more than the one before
    newest_groups, grouped = groups[-1]
    assert len(group_rows(pg_url, thread_id)) == newest_groups

    with PostgresCheckpointer(pg_url) as new_process:
        assert log_of(new_process, written[-1][0]) == written[-1][1]
        held = new_process._sql._items.of(thread_id)
        assert len(held) == newest_groups + 200 - grouped  # not one row per item
    with PostgresCheckpointer(pg_url, item_cache_bytes=0) as reader:
        for config, value in written:
            assert log_of(reader, config) == value
        history = [
            t.checkpoint["channel_values"]["log"]
            for t in reader.list({"configurable": {"thread_id": thread_id}})
        ]
        assert history == [value for _, value in reversed(written)]


def test_a_list_changed_past_its_groups_keeps_them_and_one_changed_inside_them_is_regrouped_as_it_grows(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "regrouped-" + uuid.uuid4().hex
    written = grow(saver, thread_id, range(1, 41))
    config, value = written[-1]
    _, grouped = groups_of(pg_url, thread_id)[-1]
    assert 0 < grouped < 39
    # The last item removed, and 20 added: a full version that keeps the groups and adds one.
    trimmed = value[:-1] + [item(f"new {i}") for i in range(20)]
    config = put(saver, thread_id, {"log": trimmed}, ["log"], config)
    assert groups_of(pg_url, thread_id)[-1] == (3, len(trimmed))
    assert log_of(fresh_reader, config) == trimmed
    # The first item replaced: no group holds the list's first items any longer, and a list
    # replaced by another is not grouped (it could be a window that slides at every step)...
    edited = [item("edited")] + trimmed[1:]
    config = put(saver, thread_id, {"log": edited}, ["log"], config)
    assert groups_of(pg_url, thread_id)[-1] == (0, 0)
    assert log_of(fresh_reader, config) == edited
    # ...until it grows past a tail: then one group holds all of it.
    more = [item(f"more {i}") for i in range(17)]
    for n in range(1, 18):
        config = put(saver, thread_id, {"log": edited + more[:n]}, ["log"], config)
    assert groups_of(pg_url, thread_id)[-1] == (1, len(edited) + 17)
    assert log_of(fresh_reader, config) == edited + more


def test_pruning_keeps_the_groups_a_kept_checkpoint_reads_and_removes_the_others(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "pruned-groups-" + uuid.uuid4().hex
    config, value = grow(saver, thread_id, range(1, 61))[-1]
    before = sorted(group_rows(pg_url, thread_id))
    saver.prune([thread_id], strategy="keep_latest")
    assert sorted(group_rows(pg_url, thread_id)) == before  # the newest list reads all of them
    assert log_of(fresh_reader, config) == value
    replaced = [item(f"other {i}") for i in range(20)]
    config = put(saver, thread_id, {"log": replaced}, ["log"], config)
    saver.prune([thread_id], strategy="keep_latest")
    assert group_rows(pg_url, thread_id) == []  # the replaced list names none
    assert log_of(fresh_reader, config) == replaced


def test_a_copied_thread_is_read_by_its_groups(saver: PostgresCheckpointer, pg_url: str) -> None:
    source, target = "copy-groups-" + uuid.uuid4().hex, "copied-groups-" + uuid.uuid4().hex
    config, value = grow(saver, source, range(1, 61))[-1]
    saver.copy_thread(source, target)
    assert groups_of(pg_url, target) == groups_of(pg_url, source)
    with PostgresCheckpointer(pg_url) as new_process:
        copied = {"configurable": {**config["configurable"], "thread_id": target}}
        assert log_of(new_process, copied) == value  # type: ignore[arg-type]
        assert len(new_process._sql._items.of(target)) < 30


def test_a_missing_group_is_reported_with_the_checkpoint_that_needs_it(
    saver: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "lost-group-" + uuid.uuid4().hex
    config, value = grow(saver, thread_id, range(1, 41))[-1]
    (name, _), *_ = group_rows(pg_url, thread_id)
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM dg_checkpoint_chunks WHERE thread_id = %s AND hash = %s", (thread_id, name))
    with PostgresCheckpointer(pg_url) as new_process, pytest.raises(CorruptCheckpointError) as missing:
        new_process.get_tuple(config)
    assert name.hex() in str(missing.value) and config["configurable"]["checkpoint_id"] in str(missing.value)


def test_lists_stored_before_groups_read_by_their_items_and_are_grouped_at_their_next_full_version(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """A database of schema version 3 holds no groups: its lists read by their items, and the next
    full version a process writes groups the whole list."""
    thread_id = "ungrouped-" + uuid.uuid4().hex
    written = grow(saver, thread_id, range(1, 41))
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "UPDATE dg_checkpoint_blobs SET groups = NULL, grouped = 0 WHERE thread_id = %s", (thread_id,)
        )
        conn.execute(
            "DELETE FROM dg_checkpoint_chunks WHERE thread_id = %s AND type LIKE %s",
            (thread_id, GROUP_TYPE + "%"),
        )
    for config, value in written:
        assert log_of(fresh_reader, config) == value
    with PostgresCheckpointer(pg_url) as upgraded:
        config, value = written[-1]
        assert log_of(upgraded, config) == value  # a run reads its thread first
        later = grow(upgraded, thread_id, range(41, 61), config)
    assert groups_of(pg_url, thread_id)[-1] == (1, 52)  # its tail of 16 past 35 items, then one more
    for config, value in later:
        assert log_of(fresh_reader, config) == value


def test_an_encrypted_list_stores_its_groups_sealed_and_reencrypts_them(pg_url: str) -> None:
    from durable_graph.encryption import Keys
    from durable_graph.reencrypt import reencrypt

    old_key, new_key = b"c" * 32, b"d" * 32
    thread_id = "sealed-groups-" + uuid.uuid4().hex
    with PostgresCheckpointer(pg_url, keys=Keys(old_key)) as sealed:
        config, value = grow(sealed, thread_id, range(1, 41))[-1]
    groups = group_rows(pg_url, thread_id)
    assert groups and all(type_.endswith("+aes") for _, type_ in groups)
    with psycopg.connect(pg_url) as conn:
        data = conn.execute(
            "SELECT data FROM dg_checkpoint_chunks WHERE thread_id = %s AND hash = %s",
            (thread_id, groups[0][0]),
        ).fetchone()
    assert data is not None and b"line" not in bytes(data[0])
    assert reencrypt(pg_url, [thread_id], keys=Keys(new_key, [old_key])).blobs > 0
    with PostgresCheckpointer(pg_url, keys=Keys(new_key)) as reader:
        assert log_of(reader, config) == value
        assert len(reader._sql._items.of(thread_id)) < 40
    assert {name for name, _ in group_rows(pg_url, thread_id)} == {name for name, _ in groups}  # names kept


async def test_the_async_reads_of_a_new_process_use_the_groups_too(
    saver: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "async-groups-" + uuid.uuid4().hex
    written = grow(saver, thread_id, range(1, 61))
    async with PostgresCheckpointer(pg_url) as new_process:
        found = await new_process.aget_tuple(written[-1][0])
        assert found is not None and found.checkpoint["channel_values"]["log"] == written[-1][1]
        assert len(new_process._sql._items.of(thread_id)) < 30  # 3 groups and the 8 items past them
    async with PostgresCheckpointer(pg_url, item_cache_bytes=0) as reader:
        history = [
            t.checkpoint["channel_values"]["log"]
            async for t in reader.alist({"configurable": {"thread_id": thread_id}})
        ]
        assert history == [value for _, value in reversed(written)]
