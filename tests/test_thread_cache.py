"""What the Postgres checkpointer keeps per thread: the stored list items it has written or read,
so reading a thread again fetches only the checkpoint's rows and the items it lacks; and the stored
form of each serialized item, so writing it again does not compress, encrypt or name it again.
Both are bytes, not values: what the cache returns is what the database holds (another client's new
items are fetched, a deleted thread reads as gone), and an item changed in place is a new item. A
list of msgpack items decodes in one call."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.codec import Codec
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.checkpointers.thread_cache import item_cache
from durable_graph.encryption import Keys
from durable_graph.errors import CorruptCheckpointError
from tests.test_postgres_list_hints import put_items


def new_thread() -> RunnableConfig:
    return {"configurable": {"thread_id": "cache-" + uuid.uuid4().hex, "checkpoint_ns": ""}}


def drop_items(pg_url: str, thread_id: str) -> None:
    """Deletes the thread's stored list items behind the checkpointers' backs."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM dg_checkpoint_chunks WHERE thread_id = %s", (thread_id,))


def test_a_thread_read_again_takes_its_items_from_the_cache(pg_url: str) -> None:
    thread = new_thread()
    thread_id = thread["configurable"]["thread_id"]
    items = [f"item {i}" for i in range(50)]
    with open_checkpointer(pg_url) as saver, open_checkpointer(pg_url) as cold:
        latest = put_items(saver, thread, items, 0)
        drop_items(pg_url, thread_id)
        # This client wrote the items: neither get_tuple nor list() asks the database for them.
        found = saver.get_tuple(thread)
        assert found is not None and found.checkpoint["channel_values"]["items"] == items
        assert [t.checkpoint["channel_values"]["items"] for t in saver.list(latest)] == [items]
        # A client that never saw them does, and finds them gone.
        with pytest.raises(CorruptCheckpointError, match="list item .* is missing"):
            cold.get_tuple(thread)


def test_items_another_client_added_are_fetched(pg_url: str) -> None:
    thread = new_thread()
    with open_checkpointer(pg_url) as reader, open_checkpointer(pg_url) as writer:
        first = put_items(writer, thread, ["a", "b"], 0)
        assert reader.get_tuple(thread).checkpoint["channel_values"]["items"] == ["a", "b"]  # type: ignore[union-attr]
        put_items(writer, first, ["a", "b", "c", "d"], 1)
        assert reader.get_tuple(thread).checkpoint["channel_values"]["items"] == ["a", "b", "c", "d"]  # type: ignore[union-attr]
        history = [t.checkpoint["channel_values"]["items"] for t in reader.list(thread)]
        assert history == [["a", "b", "c", "d"], ["a", "b"]]


def test_a_deleted_thread_reads_as_gone_and_can_start_again(pg_url: str) -> None:
    thread = new_thread()
    with open_checkpointer(pg_url) as saver, open_checkpointer(pg_url) as other:
        put_items(saver, thread, ["a", "b"], 0)
        other.delete_thread(thread["configurable"]["thread_id"])
        assert saver.get_tuple(thread) is None
        put_items(other, thread, ["b", "c"], 0)
        assert saver.get_tuple(thread).checkpoint["channel_values"]["items"] == ["b", "c"]  # type: ignore[union-attr]


def test_without_a_cache_every_read_fetches_the_items(pg_url: str) -> None:
    thread = new_thread()
    with PostgresCheckpointer(pg_url, item_cache_bytes=0) as saver:
        put_items(saver, thread, ["a", "b"], 0)
        drop_items(pg_url, thread["configurable"]["thread_id"])
        with pytest.raises(CorruptCheckpointError, match="missing"):
            saver.get_tuple(thread)


@pytest.mark.parametrize("bad", [-1, 1.5, "64MB", True])
def test_a_bad_cache_size_is_refused(pg_url: str, bad: Any) -> None:
    with pytest.raises(ValueError, match="item_cache_bytes"):
        PostgresCheckpointer(pg_url, item_cache_bytes=bad)


def test_the_cache_drops_the_least_recently_used_threads_past_its_size() -> None:
    cache = item_cache(3 * (1000 + 120))
    names = (bytes([i]) * 16 for i in itertools.count())
    for thread in ("t1", "t2", "t3"):
        cache.add(thread, {next(names): ("msgpack", b"x" * 1000)})
    assert cache.of("t1")  # t1 is now the most recently used
    cache.add("t4", {next(names): ("msgpack", b"x" * 1000)})
    assert [cache.holds(t) for t in ("t1", "t2", "t3", "t4")] == [True, False, True, True]
    cache.forget(["t1", "t9"])
    assert not cache.holds("t1")
    cache.add("huge", {next(names): ("msgpack", b"x" * 10_000)})  # larger than the whole cache
    assert not cache.holds("huge") and cache.holds("t4")


MIXED: list[Any] = [
    "text",
    HumanMessage(content="hello", id="m1"),
    AIMessage(content="", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "c1"}], id="m2"),
    b"raw bytes",
    None,
    {"nested": [1, 2.5, {"deep": True}]},
    "long " * 400,  # compressed
    "text",  # twice: stored once, listed twice
]


@pytest.mark.parametrize("keys", [None, Keys(b"k" * 32)], ids=["plain", "encrypted"])
def test_a_list_decodes_in_one_call_or_one_by_one_to_the_same_values(keys: Keys | None) -> None:
    codec = Codec(JsonPlusSerializer(), compress_above=512, keys=keys)
    stored, chunks = codec.encode_value(MIXED, "t1")
    items = {chunk.hash: (chunk.type, chunk.data) for chunk in chunks}
    assert codec.decode_value(stored, items, thread_id="t1", checkpoint_id="c1") == MIXED
    msgpack_only = [item for item in MIXED if isinstance(item, (str, dict, HumanMessage, AIMessage))]
    stored, chunks = codec.encode_value(msgpack_only, "t1")
    items = {chunk.hash: (chunk.type, chunk.data) for chunk in chunks}
    assert codec.decode_value(stored, items, thread_id="t1", checkpoint_id="c1") == msgpack_only


def test_a_corrupt_item_is_named_when_the_list_decodes_in_one_call() -> None:
    codec = Codec(JsonPlusSerializer())
    stored, chunks = codec.encode_value(["a", "b", "c"], "t1")
    items = {chunk.hash: (chunk.type, chunk.data) for chunk in chunks}
    items[stored.refs[1]] = ("msgpack", b"\xc1")  # a byte msgpack never uses
    with pytest.raises(CorruptCheckpointError, match="blob of type 'msgpack'"):
        codec.decode_value(stored, items, thread_id="t1", checkpoint_id="c1")


def test_an_item_written_again_keeps_its_stored_form_and_a_changed_one_gets_a_new_one() -> None:
    keys = Keys(b"k" * 32)
    remembering = Codec(JsonPlusSerializer(), keys=keys, memo_bytes=1 << 20)
    forgetting = Codec(JsonPlusSerializer(), keys=keys)
    messages: list[Any] = [{"role": "user", "text": "hello"}, {"role": "ai", "text": "hi"}]

    def stored(codec: Codec) -> list[tuple[bytes, str, bytes]]:
        _, chunks = codec.encode_value(messages, "t1")
        return [(chunk.hash, chunk.type, chunk.data) for chunk in chunks]

    # Encrypting uses a fresh nonce: equal stored bytes mean the item was not encrypted again.
    assert stored(remembering) == stored(remembering)
    assert stored(forgetting) != stored(forgetting)
    before = stored(remembering)
    messages[1]["text"] = "changed in place"
    after = stored(remembering)
    assert after[0] == before[0] and after[1][0] != before[1][0]
    value, chunks = remembering.encode_value(messages, "t1")
    items = {chunk.hash: (chunk.type, chunk.data) for chunk in chunks}
    assert remembering.decode_value(value, items, thread_id="t1", checkpoint_id="c1") == messages
