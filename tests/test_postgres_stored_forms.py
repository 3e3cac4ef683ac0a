"""Where the Postgres checkpointer keeps what, and that every form reads back the same values.

Small values live in the checkpoint row, larger ones in blobs of their version, list items in
chunks; a cold read fetches a thread's items in one of two ways. Each is checked through a reader
that has seen nothing (``item_cache_bytes=0``) as well as through the writer.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.codec import HASH_BYTES, INLINE_VERSIONS, WHOLE_LIST_MAX_BYTES, split_refs
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from tests.checkpoint_graphs import item


def put(
    saver: PostgresCheckpointer,
    thread_id: str,
    values: dict[str, Any],
    changed: list[str],
    parent: RunnableConfig | None = None,
) -> RunnableConfig:
    """Put a child of ``parent`` holding ``values``, of which ``changed`` get new versions. (Nothing
    is read: a read would make the checkpointer remember the checkpoint read instead of the last put.)"""
    versions: ChannelVersions = dict(_versions[parent["configurable"]["checkpoint_id"]]) if parent else {}
    for channel in changed:
        versions[channel] = saver.get_next_version(versions.get(channel), None)  # type: ignore[arg-type]
    checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    if parent is not None:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    stored = saver.put(config, checkpoint, generate_metadata(), {c: versions[c] for c in changed})
    _versions[stored["configurable"]["checkpoint_id"]] = versions
    return stored


_versions: dict[str, ChannelVersions] = {}
"""The channel versions of each checkpoint ``put`` wrote."""


def blob_channels(url: str, thread_id: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT channel FROM dg_checkpoint_blobs WHERE thread_id = %s", (thread_id,)
        ).fetchall()
    return {row[0] for row in rows}


def read_back(readers: list[PostgresCheckpointer], config: RunnableConfig) -> list[dict[str, Any]]:
    found = []
    for reader in readers:
        tuple_ = reader.get_tuple(config)
        assert tuple_ is not None
        found.append(tuple_.checkpoint["channel_values"])
    return found


def test_small_values_are_kept_in_the_checkpoint_row_and_read_back_with_their_versions(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "inline-" + uuid.uuid4().hex
    values = {
        "count": 3,
        "ratio": 0.5,
        "done": False,
        "nothing": None,
        "label": "short",
        "long_text": "x" * 257,
        "record": {"a": 1},
        "scores": [0.5, 1, None, True],
        "plan": ["search", "read", "answer"],
        "nothing_yet": [],
        "long_plan": ["search", "x" * 300],
        "records": [{"a": 1}],
        "many": list(range(33)),
    }
    first = put(saver, thread_id, values, list(values))
    assert blob_channels(pg_url, thread_id) == {"long_text", "record", "long_plan", "records", "many"}

    # A child that changes one small value and none of the others: every value is still there.
    second = put(saver, thread_id, {**values, "count": 4}, ["count"], parent=first)
    for reader in (saver, fresh_reader):
        read = reader.get_tuple(second)
        parent = reader.get_tuple(first)
        assert read is not None and parent is not None
        assert read.checkpoint["channel_values"] == {**values, "count": 4}
        assert set(read.checkpoint["channel_versions"]) == set(values)
        assert read.checkpoint["channel_versions"]["count"] > parent.checkpoint["channel_versions"]["count"]
        unchanged = {c: v for c, v in read.checkpoint["channel_versions"].items() if c != "count"}
        assert unchanged == {c: v for c, v in parent.checkpoint["channel_versions"].items() if c != "count"}
        assert INLINE_VERSIONS not in read.checkpoint


def test_a_short_list_kept_in_the_row_grows_into_items_and_back(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """Up to 32 short strings, a list is kept in the checkpoint row; longer, its first version out
    of the row is stored as items (33); a short one that replaces it (new string objects, as a node
    that rebuilds its list makes: 40 of them, about ``WHOLE_LIST_MAX_BYTES`` or less) is stored
    whole, one value; longer ones as items (the 42 of the next version here, then 3); shorter
    again, in the row. Every version reads back, one by one and as history."""
    thread_id = "short-list-" + uuid.uuid4().hex
    values = [[f"s{i}" for i in range(n)] for n in (1, 2, 32, 33, 40)]
    values += [
        [f"s{i}" for i in range(40)] + [item("a"), item("b")],
        [item("c"), item("a"), item("b")],
        ["s0"],
    ]
    configs: list[RunnableConfig] = []
    for value in values:
        configs.append(put(saver, thread_id, {"log": value}, ["log"], configs[-1] if configs else None))
    with psycopg.connect(pg_url) as conn:
        blobs = conn.execute(
            "SELECT type FROM dg_checkpoint_blobs WHERE thread_id = %s ORDER BY version", (thread_id,)
        ).fetchall()
        chunks = conn.execute("SELECT count(*) FROM dg_checkpoint_chunks WHERE thread_id = %s", (thread_id,))
        assert [row[0] for row in blobs] == ["chunks", "msgpack", "chunks", "chunks"]
        assert chunks.fetchone() == (43,)  # s0-s39, a, b and c, each once
    for config, value in zip(configs, values, strict=True):
        assert read_back([saver, fresh_reader], config) == [{"log": value}] * 2
    history = fresh_reader.list({"configurable": {"thread_id": thread_id}})
    assert [t.checkpoint["channel_values"]["log"] for t in history] == values[::-1]


def test_a_channel_that_turns_from_a_list_to_a_small_value_and_back_reads_right(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer
) -> None:
    thread_id = "switch-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"items": [item("a"), item("b")]}, ["items"])
    second = put(saver, thread_id, {"items": "cleared"}, ["items"], parent=first)
    # The first list and its items go; a list put after the small value must not build on them.
    saver.prune([thread_id], strategy="keep_latest")
    third = put(saver, thread_id, {"items": [item("a"), item("b"), item("c")]}, ["items"], parent=second)
    fourth = put(
        saver, thread_id, {"items": [item("a"), item("b"), item("c"), item("d")]}, ["items"], parent=third
    )
    for config, expected in (
        (second, "cleared"),
        (third, [item("a"), item("b"), item("c")]),
        (fourth, [item("a"), item("b"), item("c"), item("d")]),
    ):
        assert read_back([saver, fresh_reader], config) == [{"items": expected}] * 2


def test_a_new_version_without_a_value_reads_as_absent(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "cleared-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"gone": {"big": "value"}, "kept": 1}, ["gone", "kept"])
    second = put(saver, thread_id, {"kept": 1}, ["gone"], parent=first)
    for reader in (saver, fresh_reader):
        read = reader.get_tuple(second)
        assert read is not None
        assert read.checkpoint["channel_values"] == {"kept": 1}
        assert set(read.checkpoint["channel_versions"]) == {"gone", "kept"}
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT count(*) FROM dg_checkpoint_blobs WHERE thread_id = %s", (thread_id,))
        assert rows.fetchone() == (1,)  # the first version of "gone"; the empty one is in the row


def blob_channels_named(url: str, config: RunnableConfig) -> list[str]:
    """The channels a checkpoint row names in its blob arrays."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT channels FROM dg_checkpoints WHERE thread_id = %s AND checkpoint_id = %s",
            (config["configurable"]["thread_id"], config["configurable"]["checkpoint_id"]),
        ).fetchone()
    assert row is not None
    return list(row[0])


def test_an_unchanged_version_without_a_value_stays_in_the_row(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """A graph's trigger channels (``branch:to:...``) keep a version without a value for many steps:
    each checkpoint keeps it in its row rather than naming a blob that was never written (which
    every read would look up in vain)."""
    thread_id = "empty-kept-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"gone": {"big": "value"}, "kept": {"n": 1}}, ["gone", "kept"])
    second = put(saver, thread_id, {"kept": {"n": 1}}, ["gone"], parent=first)
    third = put(saver, thread_id, {"kept": {"n": 2}}, ["kept"], parent=second)
    assert blob_channels_named(pg_url, third) == ["kept"]
    # A process that read the parent knows it too.
    with PostgresCheckpointer(pg_url) as other:
        assert other.get_tuple(second) is not None
        fourth = put(other, thread_id, {"kept": {"n": 3}}, ["kept"], parent=second)
    assert blob_channels_named(pg_url, fourth) == ["kept"]
    # One that knows nothing of the parent names the version in the arrays, as before: still right.
    with PostgresCheckpointer(pg_url) as unaware:
        fifth = put(unaware, thread_id, {"kept": {"n": 4}}, ["kept"], parent=second)
    assert sorted(blob_channels_named(pg_url, fifth)) == ["gone", "kept"]
    gone_version = _versions[second["configurable"]["checkpoint_id"]]["gone"]
    for config, n in ((third, 2), (fourth, 3), (fifth, 4)):
        for reader in (saver, fresh_reader):
            read = reader.get_tuple(config)
            assert read is not None
            assert read.checkpoint["channel_values"] == {"kept": {"n": n}}
            assert read.checkpoint["channel_versions"]["gone"] == gone_version


def test_an_unchanged_version_left_out_of_the_values_keeps_its_blob(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer
) -> None:
    """LangGraph leaves a delta channel's value out of the checkpoints that do not snapshot it; its
    version still names the blob of its last snapshot, which reads back (as with PostgresSaver)."""
    thread_id = "left-out-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"snapshot": {"n": 1}, "kept": 1}, ["snapshot", "kept"])
    second = put(saver, thread_id, {"kept": 2}, ["kept"], parent=first)
    third = put(saver, thread_id, {"kept": 3}, ["kept"], parent=second)
    for config, kept in ((second, 2), (third, 3)):
        assert read_back([saver, fresh_reader], config) == [{"snapshot": {"n": 1}, "kept": kept}] * 2


def test_a_thread_read_without_lists_is_then_read_without_looking_for_items(
    saver: PostgresCheckpointer, pg_url: str
) -> None:
    thread_id = "no-lists-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"note": {"text": "x" * 300}}, ["note"])
    with PostgresCheckpointer(pg_url) as reader:
        assert not reader._sql._items.holds(thread_id)
        assert reader.get_tuple(first) is not None
        assert reader._sql._items.holds(thread_id)  # its next read takes the statement without items
        # Another process adds a list: the reader fetches the items it lacks.
        second = put(
            saver, thread_id, {"note": {"text": "x" * 300}, "items": [item("a"), item("b")]}, ["items"], first
        )
        assert read_back([reader], second) == [{"note": {"text": "x" * 300}, "items": [item("a"), item("b")]}]


def test_a_checkpoint_that_stores_nothing_apart_reads_from_its_row_then_as_any_once_written_to(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """A checkpoint whose values are all in its row and that has no pending writes is read from the
    row alone; the reader then holds the thread and continues it. Once the checkpoint has pending
    writes (one of them a list stored as items) it reads them back like any other checkpoint."""
    thread_id = "row-only-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"count": 1, "label": "short"}, ["count", "label"])
    assert blob_channels(pg_url, thread_id) == set()
    with PostgresCheckpointer(pg_url) as reader:
        found = reader.get_tuple(first)
        assert found is not None and found.pending_writes == []
        assert found.checkpoint["channel_values"] == {"count": 1, "label": "short"}
        assert reader._sql._items.holds(thread_id)
        second = put(reader, thread_id, {"count": 2, "label": "short"}, ["count"], parent=first)
        assert read_back([saver, fresh_reader, reader], second) == [{"count": 2, "label": "short"}] * 3
    written = [item("a"), item("b")]
    saver.put_writes(first, [("items", written), ("count", 5)], task_id="task-1")
    for reader in (saver, fresh_reader):
        found = reader.get_tuple(first)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"count": 1, "label": "short"}
        expected = [("task-1", "count", 5), ("task-1", "items", written)]
        assert sorted(found.pending_writes, key=repr) == expected


def test_checkpoints_stored_before_values_were_kept_in_the_row_still_read(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """A row of an earlier version: its body has no values, and every version names a blob."""
    thread_id = "old-form-" + uuid.uuid4().hex
    config = put(saver, thread_id, {"record": {"a": 1}, "items": [item("x"), item("y")]}, ["record", "items"])
    serde = saver.serde
    with psycopg.connect(pg_url, autocommit=True) as conn:
        type_, body = conn.execute(
            "SELECT type, checkpoint FROM dg_checkpoints WHERE thread_id = %s", (thread_id,)
        ).fetchone()  # type: ignore[misc]
        decoded = serde.loads_typed((type_, body))
        assert decoded.pop("channel_values") == {} and decoded.pop(INLINE_VERSIONS) == {}
        conn.execute(
            "UPDATE dg_checkpoints SET type = %s, checkpoint = %s WHERE thread_id = %s",
            (*serde.dumps_typed(decoded), thread_id),
        )
    with PostgresCheckpointer(pg_url) as reader:
        assert (
            read_back([reader, fresh_reader], config)
            == [{"record": {"a": 1}, "items": [item("x"), item("y")]}] * 2
        )


def test_a_fresh_read_fetches_the_whole_thread_only_when_the_checkpoint_uses_most_of_it(
    pg_url: str, fresh_reader: PostgresCheckpointer
) -> None:
    """Reading every item of a thread in key order is cheaper than looking each up, unless the
    thread holds more than twice what the checkpoint uses; both ways give the same values. (The
    lists here are too short to be grouped.)"""
    with open_checkpointer(pg_url) as writer:
        grown = "grown-" + uuid.uuid4().hex
        config = None
        for n in range(1, 16):  # a list that grows by appends
            config = put(
                writer, grown, {"log": [item(f"line {i}") for i in range(n)]}, ["log"], parent=config
            )
        # The last checkpoint drops the first line: it uses 14 of the thread's 15 items.
        config = put(
            writer, grown, {"log": [item(f"line {i}") for i in range(1, 15)]}, ["log"], parent=config
        )
        replaced = "replaced-" + uuid.uuid4().hex
        other = None
        for n in range(40):  # a list replaced at every step: the last uses 3 items of 120
            other = put(
                writer, replaced, {"plan": [item(f"step {n}.{i}") for i in range(3)]}, ["plan"], parent=other
            )
    assert config is not None and other is not None

    with PostgresCheckpointer(pg_url) as reader:
        read = reader.get_tuple(config)
        assert read is not None and read.checkpoint["channel_values"]["log"] == [
            item(f"line {i}") for i in range(1, 15)
        ]
        assert len(reader._sql._items.of(grown)) == 15  # the whole thread, in one range read
        read = reader.get_tuple(other)
        assert read is not None and read.checkpoint["channel_values"]["plan"] == [
            item(f"step 39.{i}") for i in range(3)
        ]
        assert len(reader._sql._items.of(replaced)) == 3  # only what the checkpoint uses

    # A page of history fetches its items the same two ways.
    logs = [
        t.checkpoint["channel_values"]["log"]
        for t in fresh_reader.list({"configurable": {"thread_id": grown}})
    ]
    assert logs == [[item(f"line {i}") for i in range(1, 15)]] + [
        [item(f"line {i}") for i in range(n)] for n in range(15, 0, -1)
    ]
    plans = [
        t.checkpoint["channel_values"]["plan"]
        for t in fresh_reader.list({"configurable": {"thread_id": replaced}})
    ]
    assert plans == [[item(f"step {n}.{i}") for i in range(3)] for n in range(39, -1, -1)]
    read = fresh_reader.get_tuple(other)
    assert read is not None and read.checkpoint["channel_values"]["plan"] == [
        item(f"step 39.{i}") for i in range(3)
    ]


def test_the_format_is_a_schema_version_that_earlier_versions_refuse(
    saver: PostgresCheckpointer, pg_url: str
) -> None:
    """An earlier durable-graph would read small values as missing (version 2) and pending writes
    that name items as undecodable (version 3), and would not keep list groups when pruning (version
    4); it refuses a database whose ``checkpoints`` schema is newer than the one it knows."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT max(version) FROM durable_graph_migrations WHERE component = 'checkpoints'"
        ).fetchone()
    assert row == (4,)


@pytest.mark.parametrize("names", [0, 1, 2, 45, 63, 64, 65, 129, 1000])
def test_item_names_split_the_same_at_every_length(names: int) -> None:
    """``refs`` are split 64 names at a time, then the rest at once: any count, and a damaged tail
    (a short last piece, which then names no stored item) come out as plain slices would."""
    refs = bytes(range(256)) * (names * HASH_BYTES // 256 + 1)
    for length in (names * HASH_BYTES, names * HASH_BYTES + 5):
        cut = refs[:length]
        assert split_refs(cut) == [cut[i : i + HASH_BYTES] for i in range(0, length, HASH_BYTES)]


def body_types(url: str, thread_id: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT type FROM dg_checkpoints WHERE thread_id = %s ORDER BY checkpoint_id", (thread_id,)
        ).fetchall()
    return [row[0] for row in rows]


def item_types(url: str, thread_id: str) -> list[tuple[str, int]]:
    """The stored type and data length of each list item of the thread (not groups), in type order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT type, length(data) FROM dg_checkpoint_chunks"
            " WHERE thread_id = %s AND type NOT LIKE 'msgpack-items%%' ORDER BY type",
            (thread_id,),
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def test_list_items_are_compressed_above_1_kb_by_default(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """An item of about 700 bytes (a short chat message) stays plain: compressing it would save
    little and cost every first read a decompression; one of about 2 KB is compressed."""
    thread_id = "items-" + uuid.uuid4().hex
    values = {"notes": ["short " * 115, "long " * 400, "tiny"] * 11}
    config = put(saver, thread_id, values, ["notes"])
    stored = item_types(pg_url, thread_id)
    assert [type_ for type_, _ in stored] == ["msgpack", "msgpack", "msgpack+z"]
    assert all(length < 1024 for type_, length in stored if type_ == "msgpack")
    assert read_back([saver, fresh_reader], config) == [values, values]


def test_a_checkpoint_body_is_compressed_only_above_2_kb(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """Strings of up to 256 characters are kept in the body: 5 of them make a body of about 1.4 KB,
    which stays plain although values of that size are compressed; 12 make one of about 3.3 KB."""
    thread_id = "body-" + uuid.uuid4().hex
    middle = {f"note{i}": "x" * 250 for i in range(5)}
    large = {f"note{i}": "y" * 250 for i in range(12)}
    first = put(saver, thread_id, middle, list(middle))
    second = put(saver, thread_id, large, list(large), parent=first)
    assert not blob_channels(pg_url, thread_id)  # all in the bodies
    assert body_types(pg_url, thread_id) == ["msgpack", "msgpack+z"]
    for config, values in ((first, middle), (second, large)):
        assert read_back([saver, fresh_reader], config) == [values, values]


def test_a_page_of_history_cuts_older_versions_of_a_grown_list_from_the_newest(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed newest first, the versions of a list that grew by appends each hold the first items
    of the one before: those are cut from its decoded array, not named, looked up and joined
    again. A version that is not such a part (the newest drops the first line) is decoded by itself."""
    thread_id = "history-" + uuid.uuid4().hex
    config = None
    for n in range(1, 16):
        config = put(saver, thread_id, {"log": [item(f"line {i}") for i in range(n)]}, ["log"], parent=config)
    put(saver, thread_id, {"log": [item(f"line {i}") for i in range(1, 15)]}, ["log"], parent=config)
    codec = fresh_reader._sql.codec
    decoded: list[int] = []
    decode_items = codec.decode_items

    def counting(names: Any, *args: Any, **kwargs: Any) -> Any:
        decoded.append(len(names))
        return decode_items(names, *args, **kwargs)

    monkeypatch.setattr(codec, "decode_items", counting)
    thread: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    logs = [t.checkpoint["channel_values"]["log"] for t in fresh_reader.list(thread, limit=10)]
    assert logs == [[item(f"line {i}") for i in range(1, 15)]] + [
        [item(f"line {i}") for i in range(n)] for n in range(15, 6, -1)
    ]
    assert decoded == [14, 15]  # the newest, then the longest version it does not lead; the rest cut


def write_rows(url: str, thread_id: str) -> list[tuple[str, str, bytes]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT channel, type, data FROM dg_checkpoint_writes WHERE thread_id = %s ORDER BY idx",
            (thread_id,),
        ).fetchall()
    return [(row[0], row[1], bytes(row[2])) for row in rows]


def chunk_hashes(url: str, thread_id: str) -> set[bytes]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT hash FROM dg_checkpoint_chunks WHERE thread_id = %s", (thread_id,))
        return {bytes(row[0]) for row in rows.fetchall()}


def pending(reader: PostgresCheckpointer, config: RunnableConfig) -> list[tuple[str, str, Any]]:
    found = reader.get_tuple(config)
    assert found is not None
    return list(found.pending_writes or [])


def test_a_written_long_list_names_its_items_which_the_list_it_extends_shares(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """A node's new messages are written before the checkpoint that adds them to the list: the write
    names them, and the next checkpoint's list names the same item rows instead of adding others.
    A list of small items stays a value of its own."""
    thread_id = "writes-" + uuid.uuid4().hex
    history = [item(f"message {i} " + "words " * 150) for i in range(3)]
    first = put(saver, thread_id, {"messages": history}, ["messages"])
    new = [item("answer " + "words " * 150), item("tool result " + "words " * 150)]
    writes = [("messages", new), ("count", 5), ("small", ["a", "b", "c"])]
    saver.put_writes(first, writes, task_id="task-1")

    stored = write_rows(pg_url, thread_id)
    assert [(channel, type_) for channel, type_, _ in stored] == [
        ("messages", "chunks"),
        ("count", "msgpack"),
        ("small", "msgpack"),
    ]
    names = split_refs(stored[0][2])
    assert len(names) == 2 and set(names) <= chunk_hashes(pg_url, thread_id)
    for reader in (saver, fresh_reader):
        assert pending(reader, first) == [("task-1", channel, value) for channel, value in writes]
    assert [w[2] for w in next(iter(fresh_reader.list(first)))[4]] == [new, 5, ["a", "b", "c"]]

    before = chunk_hashes(pg_url, thread_id)
    second = put(saver, thread_id, {"messages": history + new}, ["messages"], parent=first)
    assert chunk_hashes(pg_url, thread_id) == before  # the list's new items are the write's
    assert read_back([saver, fresh_reader], second) == [{"messages": history + new}] * 2


def test_a_short_list_replaced_at_every_step_and_the_writes_to_it_are_stored_whole(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """Four retrieved documents (about 1.3 KB) replaced by four others: the first version is stored
    as items (the list might grow), the one that replaces it whole, as one value (put again
    unchanged, whole again), and so is a node's write of four more by the process that put it. A
    process that has not seen the checkpoint stores a write of such documents as items, as it would
    for a long list. Eight documents, more than ``WHOLE_LIST_MAX_BYTES``, are items again. Every
    version and write reads back, one by one and as history."""
    thread_id = "whole-" + uuid.uuid4().hex

    def documents(first: int, last: int) -> list[dict[str, str]]:
        return [{"id": f"doc-{n}", "text": f"passage {n}: " + "z" * 280} for n in range(first, last)]

    assert len(str(documents(0, 4))) < WHOLE_LIST_MAX_BYTES < len(str(documents(0, 8)))
    first = put(saver, thread_id, {"documents": documents(0, 4)}, ["documents"])
    replacing = documents(4, 8)
    second = put(saver, thread_id, {"documents": replacing}, ["documents"], parent=first)
    second = put(saver, thread_id, {"documents": replacing}, ["documents"], parent=second)  # again
    saver.put_writes(second, [("documents", documents(8, 12))], task_id="known")
    fresh_reader.put_writes(second, [("documents", documents(12, 16))], task_id="unseen")
    third = put(saver, thread_id, {"documents": documents(0, 8)}, ["documents"], parent=second)

    with psycopg.connect(pg_url) as conn:
        blobs = conn.execute(
            "SELECT type FROM dg_checkpoint_blobs WHERE thread_id = %s ORDER BY version", (thread_id,)
        ).fetchall()

    def form(type_: str) -> str:
        return "items" if type_ == "chunks" else "whole"  # whole: msgpack, compressed above 1 KB

    assert [form(row[0]) for row in blobs] == ["items", "whole", "whole", "items"]
    assert [(channel, form(type_)) for channel, type_, _ in write_rows(pg_url, thread_id)] == [
        ("documents", "whole"),
        ("documents", "items"),
    ]
    # The first version's 4, the unseen write's 4 and the third version's 4 new ones.
    assert len(chunk_hashes(pg_url, thread_id)) == 12
    for reader in (saver, fresh_reader):
        assert sorted(pending(reader, second)) == [
            ("known", "documents", documents(8, 12)),
            ("unseen", "documents", documents(12, 16)),
        ]
    for config, docs in ((first, documents(0, 4)), (second, replacing), (third, documents(0, 8))):
        assert read_back([saver, fresh_reader], config) == [{"documents": docs}] * 2
    history = fresh_reader.list({"configurable": {"thread_id": thread_id}})
    assert [t.checkpoint["channel_values"]["documents"] for t in history] == [
        documents(0, 8),
        documents(4, 8),
        documents(4, 8),
        documents(0, 4),
    ]


def test_pruning_keeps_the_items_a_kept_checkpoints_writes_name(
    saver: PostgresCheckpointer, fresh_reader: PostgresCheckpointer, pg_url: str
) -> None:
    """A step that stopped before its checkpoint (an interrupt, a failed sibling task) leaves writes
    whose items no list names yet: pruning the checkpoints before keeps them; deleting the writes'
    checkpoint removes them."""
    thread_id = "writes-prune-" + uuid.uuid4().hex
    first = put(saver, thread_id, {"messages": [item("question " + "words " * 150)] * 2}, ["messages"])
    other = {"messages": [item("other " + "words " * 150)] * 2}
    second = put(saver, thread_id, other, ["messages"], parent=first)
    written = [item(f"draft {i} " + "words " * 150) for i in range(2)]
    saver.put_writes(second, [("messages", written)], task_id="task-1")

    saver.prune([thread_id], strategy="keep_latest")
    assert pending(fresh_reader, second) == [("task-1", "messages", written)]
    [(_, _, names)] = write_rows(pg_url, thread_id)
    assert set(split_refs(names)) <= chunk_hashes(pg_url, thread_id)

    final = {"messages": [item("final " + "words " * 150)] * 2}
    put(saver, thread_id, final, ["messages"], parent=second)
    saver.prune([thread_id], strategy="keep_latest")
    assert not write_rows(pg_url, thread_id)
    assert not set(split_refs(names)) & chunk_hashes(pg_url, thread_id)


def test_an_encrypted_thread_stores_written_items_sealed_and_reencrypts_around_their_names(
    pg_url: str,
) -> None:
    """The items a write names are sealed like list items; re-encryption rewrites them and leaves
    the names, which are not sealed, as they are."""
    from durable_graph.encryption import Keys
    from durable_graph.reencrypt import reencrypt

    old_key, new_key = b"a" * 32, b"b" * 32
    thread_id = "writes-sealed-" + uuid.uuid4().hex
    written = [item(f"secret {i} " + "words " * 150) for i in range(2)]
    with PostgresCheckpointer(pg_url, keys=Keys(old_key)) as sealed:
        first = put(sealed, thread_id, {"messages": [item("hello " + "words " * 150)] * 2}, ["messages"])
        sealed.put_writes(first, [("messages", written)], task_id="task-1")
    with psycopg.connect(pg_url) as conn:
        types = conn.execute("SELECT type FROM dg_checkpoint_chunks WHERE thread_id = %s", (thread_id,))
        assert all(row[0].endswith("+aes") for row in types.fetchall())
    assert [type_ for _, type_, _ in write_rows(pg_url, thread_id)] == ["chunks"]

    done = reencrypt(pg_url, [thread_id], keys=Keys(new_key, [old_key]))
    assert done.blobs > 0
    assert [type_ for _, type_, _ in write_rows(pg_url, thread_id)] == ["chunks"]
    with PostgresCheckpointer(pg_url, keys=Keys(new_key), item_cache_bytes=0) as reader:
        assert pending(reader, first) == [("task-1", "messages", written)]
