"""What the Postgres checkpointer keeps per thread: the stored list items it has written or read,
so reading a thread again fetches only the checkpoint's rows and the items it lacks; and the stored
form of each serialized item, so writing it again does not compress, encrypt or name it again; and
the item objects it serialized with a fingerprint of their contents, so an unchanged one is not
serialized again. What the cache returns is what the database holds (another client's new items are
fetched, a deleted thread reads as gone), and an item changed in place, in any way the serializer
would tell apart, is stored as it is now. A list of msgpack items decodes in one call."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, PrivateAttr, model_serializer

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.codec import Chunk, Codec
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.checkpointers.thread_cache import item_cache
from durable_graph.encryption import Keys
from durable_graph.errors import CorruptCheckpointError
from tests.checkpoint_graphs import item
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
    items = [item(f"item {i}") for i in range(50)]
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


def test_a_list_read_again_unchanged_is_decoded_from_its_array_into_new_objects(pg_url: str) -> None:
    """The second read of an unchanged list decodes the array kept at the first (the items it held
    are not looked at: here they are spoiled and the read still succeeds), into objects of its own;
    a list another client changed is read anew."""
    thread = new_thread()
    thread_id = thread["configurable"]["thread_id"]
    items = [{"n": i, "text": item(f"item {i}")} for i in range(20)]
    with open_checkpointer(pg_url) as reader, open_checkpointer(pg_url) as writer:
        first = put_items(writer, thread, items, 0)
        read = reader.get_tuple(thread)
        assert read is not None and read.checkpoint["channel_values"]["items"] == items
        held = reader._sql._items.of(thread_id)
        for name in list(held):
            held[name] = ("msgpack", b"\xc1")  # not msgpack: decoding from items would fail
        again = reader.get_tuple(thread)
        assert again is not None and again.checkpoint["channel_values"]["items"] == items
        read.checkpoint["channel_values"]["items"][0]["n"] = -1
        read.checkpoint["channel_values"]["items"].append("changed in place")
        assert reader.get_tuple(thread).checkpoint["channel_values"]["items"] == items  # type: ignore[union-attr]
        reader._sql._items.forget([thread_id])
        changed = [*items[:5], {"n": 99, "text": "replaced"}]
        put_items(writer, first, changed, 1)
        assert reader.get_tuple(thread).checkpoint["channel_values"]["items"] == changed  # type: ignore[union-attr]


def test_items_another_client_added_are_fetched(pg_url: str) -> None:
    thread = new_thread()
    with open_checkpointer(pg_url) as reader, open_checkpointer(pg_url) as writer:
        first = put_items(writer, thread, [item("a"), item("b")], 0)
        assert reader.get_tuple(thread).checkpoint["channel_values"]["items"] == [item("a"), item("b")]  # type: ignore[union-attr]
        put_items(writer, first, [item("a"), item("b"), item("c"), item("d")], 1)
        assert reader.get_tuple(thread).checkpoint["channel_values"]["items"] == [
            item("a"),
            item("b"),
            item("c"),
            item("d"),
        ]  # type: ignore[union-attr]
        history = [t.checkpoint["channel_values"]["items"] for t in reader.list(thread)]
        assert history == [[item("a"), item("b"), item("c"), item("d")], [item("a"), item("b")]]


def test_a_deleted_thread_reads_as_gone_and_can_start_again(pg_url: str) -> None:
    thread = new_thread()
    with open_checkpointer(pg_url) as saver, open_checkpointer(pg_url) as other:
        put_items(saver, thread, [item("a"), item("b")], 0)
        other.delete_thread(thread["configurable"]["thread_id"])
        assert saver.get_tuple(thread) is None
        put_items(other, thread, [item("b"), item("c")], 0)
        assert saver.get_tuple(thread).checkpoint["channel_values"]["items"] == [item("b"), item("c")]  # type: ignore[union-attr]


def test_deleting_a_thread_drops_what_the_write_caches_kept_of_it(pg_url: str) -> None:
    thread = new_thread()
    thread_id = thread["configurable"]["thread_id"]
    with PostgresCheckpointer(pg_url) as saver:
        put_items(saver, thread, [item("a"), item("b")], 0)
        codec = saver._sql.codec
        caches = [codec.memo, codec.seen, codec.lists]
        assert all(cache is not None and cache.holds(thread_id) for cache in caches)
        saver.delete_thread(thread_id)
        assert not any(cache is not None and cache.holds(thread_id) for cache in caches)


def test_without_a_cache_every_read_fetches_the_items(pg_url: str) -> None:
    thread = new_thread()
    with PostgresCheckpointer(pg_url, item_cache_bytes=0) as saver:
        put_items(saver, thread, [item("a"), item("b")], 0)
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


def test_an_entry_added_again_is_counted_once() -> None:
    cache = item_cache(2 * (1000 + 120))  # room for two items of 1,000 bytes
    first = {b"\x01" * 16: ("msgpack", b"x" * 1000)}
    cache.add("t1", first)  # the thread's first entries
    cache.add("t1", first)  # the same item again, as a read of a grown list brings it
    cache.add("t2", {b"\x02" * 16: ("msgpack", b"x" * 1000)})
    assert cache.holds("t1") and cache.holds("t2")
    cache.add("t2", {b"\x03" * 16: ("msgpack", b"x" * 1000)})  # a third item: t1 goes
    assert not cache.holds("t1") and cache.holds("t2")


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
    stored, chunks = codec.encode_value([item("a"), item("b"), item("c")], "t1")
    items = {chunk.hash: (chunk.type, chunk.data) for chunk in chunks}
    items[stored.refs[1]] = ("msgpack", b"\xc1")  # a byte msgpack never uses
    with pytest.raises(CorruptCheckpointError, match="blob of type 'msgpack'"):
        codec.decode_value(stored, items, thread_id="t1", checkpoint_id="c1")


def test_an_item_written_again_keeps_its_stored_form_and_a_changed_one_gets_a_new_one() -> None:
    keys = Keys(b"k" * 32)
    remembering = Codec(JsonPlusSerializer(), keys=keys, memo_bytes=1 << 20, whole_lists_up_to=0)
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


class CountingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, counting the values it serializes."""

    def __init__(self) -> None:
        super().__init__()
        self.dumped = 0

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        self.dumped += 1
        return super().dumps_typed(obj)


def opened_items(codec: Codec, chunks: list[Chunk]) -> dict[bytes, tuple[str, bytes]]:
    """The items ``chunks`` stores, by name, as the serializer made them."""
    return codec.opened([c.hash for c in chunks], [c.type for c in chunks], [c.data for c in chunks])


def stored_list(codec: Codec, values: list[Any]) -> tuple[list[tuple[str, bytes]], list[Any]]:
    """What ``codec`` stores for the list (each item as the serializer made it), and the list
    decoded back from what it stored."""
    value, chunks = codec.encode_value(values, "t1")
    items = {chunk.hash: (chunk.type, chunk.data) for chunk in chunks}
    opened = opened_items(codec, chunks)
    plain = [opened[ref] for ref in value.refs]
    return plain, codec.decode_value(value, items, thread_id="t1", checkpoint_id="c1")


class Color(Enum):
    RED = 1


def changes_in_place() -> list[tuple[str, Callable[[], Any], Callable[[Any], None]]]:
    """(what, a maker of a new item, a change made to it in place)."""
    call = {"name": "search", "args": {"q": "x", "n": 1}, "id": "c1"}

    def message() -> AIMessage:
        return AIMessage(content="hi", tool_calls=[dict(call)], id="m1")

    def set_arg(key: str, value: Any) -> Callable[[AIMessage], None]:
        return lambda m: m.tool_calls[0]["args"].__setitem__(key, value)

    return [
        ("message content", message, lambda m: setattr(m, "content", "changed")),
        ("nested tool call argument", message, set_arg("q", "y")),
        ("an int that becomes an equal float", message, set_arg("n", 1.0)),
        ("an int that becomes an equal bool", message, set_arg("n", True)),
        ("an enum member in place of its value", message, set_arg("n", Color.RED)),
        ("a datetime added", message, lambda m: m.additional_kwargs.__setitem__("at", datetime(2026, 1, 1))),
        ("an extra field added", message, lambda m: setattr(m, "note", "extra")),
        ("dict keys reordered", lambda: {"a": 1, "b": 2}, lambda d: d.update(a=d.pop("a"))),
        ("a nested list appended to", lambda: {"log": [1, 2]}, lambda d: d["log"].append(3)),
        ("a list item", lambda: [1, "x"], lambda item: item.__setitem__(0, 2)),
    ]


@pytest.mark.parametrize("grown", [False, True], ids=["same list", "list grown too"])
@pytest.mark.parametrize("what, make, change", changes_in_place(), ids=[c[0] for c in changes_in_place()])
def test_an_item_changed_in_place_is_stored_as_it_is_now(
    what: str, make: Callable[[], Any], change: Callable[[Any], None], grown: bool
) -> None:
    codec = Codec(JsonPlusSerializer(), memo_bytes=1 << 20, whole_lists_up_to=0)
    item = make()
    values = ["first", item, {"role": "user", "text": "later"}]
    stored_list(codec, values)
    change(item)
    if grown:  # the same objects first, a new one after: the list is checked in one call
        values.append(AIMessage(content="new", id="m9"))
    plain, decoded = stored_list(codec, values)
    assert plain[1] == JsonPlusSerializer().dumps_typed(item), what
    assert decoded == values


def test_an_unchanged_item_written_again_is_not_serialized_again() -> None:
    serde = CountingSerializer()
    codec = Codec(serde, memo_bytes=1 << 20, whole_lists_up_to=0)
    messages: list[Any] = [HumanMessage(content="hello", id="m1"), {"role": "ai", "text": "hi"}, "text"]
    stored_list(codec, messages)
    assert serde.dumped == 3
    messages.append(AIMessage(content="more", id="m2"))
    plain, decoded = stored_list(codec, messages)
    assert serde.dumped == 4  # the new one only
    assert decoded == messages
    # An equal but new object (as after decoding the thread again) is serialized, once.
    messages[0] = HumanMessage(content="hello", id="m1")
    stored_list(codec, messages)
    stored_list(codec, messages)
    assert serde.dumped == 5
    # Without the memo every item is serialized at every put.
    forgetting = CountingSerializer()
    stored_list(Codec(forgetting), messages)
    stored_list(Codec(forgetting), messages)
    assert forgetting.dumped == 8


def test_a_list_that_grows_by_appends_serializes_only_its_new_items() -> None:
    serde = CountingSerializer()
    codec = Codec(serde, memo_bytes=1 << 20, whole_lists_up_to=0)
    messages: list[Any] = []
    for step in range(50):
        messages = [*messages, AIMessage(content=f"call {step}", id=f"a{step}"), {"result": step}]
        plain, decoded = stored_list(codec, messages)
        assert decoded == messages
    assert serde.dumped == 100
    assert plain == [JsonPlusSerializer().dumps_typed(m) for m in messages]


class Draft(BaseModel):
    """A model whose serialized form shows a private attribute."""

    text: str
    _revision: int = PrivateAttr(default=0)

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        return {"text": self.text, "revision": self._revision}


@pytest.mark.parametrize("grown", [False, True], ids=["same list", "list grown too"])
def test_a_model_whose_private_attribute_changed_is_stored_as_it_is_now(grown: bool) -> None:
    codec = Codec(JsonPlusSerializer(), memo_bytes=1 << 20, whole_lists_up_to=0)
    draft = Draft(text="hello")
    values: list[Any] = ["first", draft]
    stored_list(codec, values)
    draft._revision = 2
    if grown:
        values.append("new")
    value, chunks = codec.encode_value(values, "t1")
    opened = opened_items(codec, chunks)
    assert opened[value.refs[1]] == JsonPlusSerializer().dumps_typed(draft)


def test_an_item_that_cannot_be_fingerprinted_is_serialized_at_every_put() -> None:
    serde = CountingSerializer()
    codec = Codec(serde, memo_bytes=1 << 20, whole_lists_up_to=0)
    values: list[Any] = [{"at": datetime(2026, 1, 1)}, Color.RED]
    stored_list(codec, values)
    stored_list(codec, values)
    assert serde.dumped == 4


def test_a_graph_that_changes_a_message_in_place_reads_back_as_it_left_it(pg_url: str) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    def ask(state: State) -> dict[str, Any]:
        return {
            "messages": [
                AIMessage(content=item("draft"), tool_calls=[{"name": "t", "args": {"n": 1}, "id": "c1"}])
            ]
        }

    def revise(state: State) -> dict[str, Any]:
        first = state["messages"][-1]
        first.content = item("revised")  # in place, as some nodes do
        first.tool_calls[0]["args"]["n"] = 1.0
        return {"messages": [HumanMessage(content=item("ok"))]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("revise", revise)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "revise")
    builder.add_edge("revise", END)
    thread = new_thread()
    with open_checkpointer(pg_url) as saver:
        final = builder.compile(checkpointer=saver).invoke({"messages": []}, thread, durability="sync")
    with open_checkpointer(pg_url) as fresh:
        read = builder.compile(checkpointer=fresh).get_state(thread).values
    assert [m.content for m in read["messages"]] == [item("revised"), item("ok")]
    assert type(read["messages"][0].tool_calls[0]["args"]["n"]) is float
    assert read["messages"] == final["messages"]


def test_threads_known_to_have_no_items_are_held_and_bounded() -> None:
    cache = item_cache(3 * 120)
    for thread_id in ("t1", "t2", "t3"):
        cache.know(thread_id)
    assert [cache.holds(t) for t in ("t1", "t2", "t3")] == [True, True, True]
    assert cache.of("t1") == {}  # t1 is now the most recently used
    cache.know("t4")  # each counts as one entry's overhead: the least recently used goes
    assert [cache.holds(t) for t in ("t1", "t2", "t3", "t4")] == [True, False, True, True]
    assert not item_cache(0).holds("t1") and item_cache(0).know("t1") is None


def test_a_short_list_is_stored_whole_unless_it_is_the_first_or_grows_a_list_of_items() -> None:
    """What the codec stores for the lists put one after another in one channel: items for the
    first (it may grow) and for one that grows it; one value for a short list that replaces it,
    and for that list put again or grown while it stays short; items again past the size. Each
    decodes back to the list put."""
    codec = Codec(JsonPlusSerializer(), memo_bytes=1 << 20)

    def form(values: list[Any]) -> str:
        stored, chunks = codec.encode_channel_items({"documents": values}, ["documents"], "t1")
        value = stored["documents"]
        assert codec.decode_value(value, chunks, thread_id="t1", checkpoint_id="c1") == values
        return "items" if value.refs else "whole"

    first = [{"text": f"passage {n}"} for n in range(4)]
    replacing = [{"text": f"other {n}"} for n in range(4)]
    long = [*replacing, *({"text": "x" * 300, "n": n} for n in range(8))]
    steps = [
        first,
        [*first, {"text": "passage 4"}],
        replacing,
        replacing,
        [*replacing, {"text": "more"}],
        long,
        [*long, {"text": "more"}],
        [{"text": "short"}],
    ]
    forms = ["items", "items", "whole", "whole", "whole", "items", "items", "whole"]
    assert [form(values) for values in steps] == forms
