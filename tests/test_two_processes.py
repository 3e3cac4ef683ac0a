"""Two checkpointers on one database, as two processes serving the same threads, read back what
LangGraph's own ``InMemorySaver`` holds after the same random operations: Postgres (values stored as
is, encrypted, and through the async methods) and SQLite.

A Postgres checkpointer keeps what it wrote and read (list items, the lists of the last checkpoint,
the item objects it serialized and their fingerprints), so the other one's writes, deletes and
prunes are what could make it answer from stale memory. The operations are those of graph runs: a
put extends, replaces, shortens or changes in place the list it last saw (a run that has not re-read
the thread forks it from an older checkpoint), or first reads the latest checkpoint, and may save
pending writes on its parent beside it; pending writes, copies, deletes (of threads and of runs) and
prunes come from either process, and reads also from a third one that caches no items (a process new
to the thread), in a thread's root namespace and in a subgraph's. Lists grow long enough to be
stored as tails of earlier versions; items are dicts of several sizes (the larger compressed),
messages and strings; an item changed in place may keep an equal value of another type (1 and 1.0),
which only its serialized form tells apart, so values are compared serialized.

Examples: ``$DURABLE_GRAPH_PROPERTY_EXAMPLES`` (default 60, CI-sized: a few seconds); set it to e.g.
2000 locally.
"""

from __future__ import annotations

import asyncio
import copy
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import LATEST_VERSION, BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from durable_graph.encryption import Keys

EXAMPLES = int(os.environ.get("DURABLE_GRAPH_PROPERTY_EXAMPLES", "60"))

Writer = Literal["A", "B"]
Reader = Literal["A", "B", "new"]
Kind = Literal["short dict", "dict", "large dict", "message", "text"]


@dataclass(frozen=True)
class Append:
    count: int
    kind: Kind
    in_place: bool  # extend the list object itself, else make a new list (as operator.add does)


@dataclass(frozen=True)
class Replace:
    count: int
    kind: Kind


@dataclass(frozen=True)
class Remove:
    at: int


@dataclass(frozen=True)
class Change:
    at: int
    how: Literal["int to equal float", "text", "new key"]


@dataclass(frozen=True)
class Put:
    writer: Writer
    thread: str
    change: Append | Replace | Remove | Change
    read_first: bool  # read the latest checkpoint first, else go on from the one this writer last saw
    writes: int | None  # pending writes on the parent, saved with the put at once (as a graph step does)


@dataclass(frozen=True)
class PutWrites:
    writer: Writer
    thread: str
    task: str
    value: int


@dataclass(frozen=True)
class Copy:
    writer: Writer
    source: str
    target: str


@dataclass(frozen=True)
class Read:
    reader: Reader
    thread: str
    pick: int | None  # None: the latest; else the n-th checkpoint of the thread made so far


@dataclass(frozen=True)
class List:
    reader: Reader
    thread: str
    limit: int | None


@dataclass(frozen=True)
class Delete:
    writer: Writer
    thread: str


@dataclass(frozen=True)
class DeleteRun:
    writer: Writer
    run: int  # the checkpoints whose counter leaves this remainder by 3 (see ``put``)


@dataclass(frozen=True)
class Prune:
    writer: Writer
    thread: str


# Where a checkpoint goes: a thread, or "thread/namespace" (a subgraph's checkpoints).
THREADS = ("t1", "t1/sub", "t2", "t3")
threads = st.sampled_from(["t1", "t1", "t1/sub", "t2", "t3"])
writers = st.sampled_from(["A", "B"])
readers = st.sampled_from(["A", "B", "new"])
kinds = st.sampled_from(["short dict", "dict", "large dict", "message", "text"])
# Appends are the most frequent change, as in a growing message list, so lists grow long enough
# to be stored as tails of an earlier version (past 16 items).
changes = st.one_of(
    st.builds(Append, st.integers(1, 60), kinds, st.booleans()),
    st.builds(Append, st.integers(1, 60), kinds, st.booleans()),
    st.builds(Append, st.integers(1, 3), kinds, st.booleans()),
    st.builds(Replace, st.integers(0, 6), kinds),
    st.builds(Remove, st.integers(0, 200)),
    st.builds(Change, st.integers(0, 200), st.sampled_from(["int to equal float", "text", "new key"])),
)
puts = st.builds(Put, writers, threads, changes, st.booleans(), st.one_of(st.none(), st.integers(0, 9)))
operations = st.one_of(
    puts,
    puts,
    puts,
    puts,
    st.builds(Read, readers, threads, st.one_of(st.none(), st.integers(0, 60))),
    st.builds(Read, readers, threads, st.none()),
    st.builds(List, readers, threads, st.one_of(st.none(), st.integers(1, 3))),
    st.builds(PutWrites, writers, threads, st.sampled_from(["task-1", "task-2"]), st.integers(0, 9)),
    st.builds(Copy, writers, threads, threads),
    st.builds(Delete, writers, threads),
    st.builds(Prune, writers, threads),
    st.builds(DeleteRun, writers, st.integers(0, 2)),
)

SERDE = JsonPlusSerializer()


def new_item(kind: Kind, n: int) -> Any:
    if kind == "short dict":
        return {"n": n, "text": f"item {n}"}
    if kind == "dict":
        return {"n": n, "text": f"item {n} " + "words of some length " * 30}  # ~630 bytes
    if kind == "large dict":
        return {"n": n, "text": f"item {n} " + "a longer passage of words " * 80}  # compressed
    if kind == "message":
        return AIMessage(
            content=f"answer {n}",
            id=f"m{n}",
            tool_calls=[{"name": "search", "args": {"n": n, "q": f"query {n}"}, "id": f"c{n}"}],
        )
    return f"text {n} " + "t" * 300


def change_in_place(item: Any, how: str) -> None:
    if isinstance(item, AIMessage):
        args = item.tool_calls[0]["args"]
        if how == "int to equal float" and type(args["n"]) is int:
            args["n"] = float(args["n"])
        elif how == "new key":
            item.additional_kwargs["seen"] = True
        else:
            item.content = f"{item.content}!"
    elif isinstance(item, dict):
        if how == "int to equal float" and type(item["n"]) is int:
            item["n"] = float(item["n"])
        elif how == "new key":
            item["extra"] = len(item)
        else:
            item["text"] += "!"
    # a string cannot change in place


@dataclass
class Seen:
    """What one writer process holds of a thread: the checkpoint it last wrote or read, with the
    value objects it has (changes in place change these)."""

    config: RunnableConfig
    values: dict[str, Any]
    versions: dict[str, str]

    @classmethod
    def of(cls, found: CheckpointTuple) -> Seen:
        """What a run that resumes from ``found`` holds."""
        checkpoint = found.checkpoint
        return cls(found.config, checkpoint["channel_values"], dict(checkpoint["channel_versions"]))


@dataclass
class Example:
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:10] + "-")
    counter: int = 0
    made: dict[str, list[str]] = field(default_factory=dict)
    seen: dict[tuple[str, str], Seen] = field(default_factory=dict)

    def config(self, where: str, checkpoint_id: str | None = None) -> RunnableConfig:
        """The config of ``where``, a thread or "thread/namespace" (see ``THREADS``)."""
        thread, _, namespace = where.partition("/")
        configurable = {"thread_id": self.prefix + thread, "checkpoint_ns": namespace}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    def thread_id(self, where: str) -> str:
        return self.prefix + where.partition("/")[0]

    def next(self) -> int:
        self.counter += 1
        return self.counter


def stored(found: CheckpointTuple | None) -> Any:
    """What a read returned, values serialized (1 and 1.0 differ)."""
    if found is None:
        return None
    checkpoint = found.checkpoint
    return (
        found.config["configurable"]["checkpoint_id"],
        (found.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
        SERDE.dumps_typed(dict(sorted(checkpoint["channel_values"].items()))),
        sorted(checkpoint["channel_versions"].items()),
        sorted(found.pending_writes or [], key=repr),
    )


def put(savers: dict[str, BaseCheckpointSaver], example: Example, op: Put) -> None:
    saver, reference = savers[op.writer], savers["reference"]
    key = (op.writer, op.thread)
    last = example.seen.get(key)
    if op.read_first or last is None:
        found = saver.get_tuple(example.config(op.thread))
        last = Seen(example.config(op.thread), {}, {}) if found is None else Seen.of(found)
    values = dict(last.values)
    items = values.get("items", [])
    change = op.change
    if isinstance(change, Append):
        added = [new_item(change.kind, example.next()) for _ in range(change.count)]
        if change.in_place:
            items.extend(added)
        else:
            items = items + added
    elif isinstance(change, Replace):
        items = [new_item(change.kind, example.next()) for _ in range(change.count)]
    elif isinstance(change, Remove) and items:
        items = items[: change.at % len(items)] + items[change.at % len(items) + 1 :]
    elif isinstance(change, Change) and items:
        change_in_place(items[change.at % len(items)], change.how)
    values["items"] = items
    values["step"] = n = example.next()
    version = f"{n:010}.{uuid.uuid4().hex[:8]}"
    new_versions = {"items": version, "step": version}
    checkpoint = {
        "v": LATEST_VERSION,
        "id": f"00000000-{n:04x}-6000-8000-000000000000",  # text order is creation order
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": values,
        "channel_versions": {**last.versions, **new_versions},
        "versions_seen": {},
        "pending_sends": [],
        "updated_channels": sorted(new_versions),
    }
    metadata = {"source": "loop", "step": n, "parents": {}, "run_id": f"{example.prefix}run-{n % 3}"}
    writes = None
    if op.writes is not None and last.config["configurable"].get("checkpoint_id"):
        writes = [("items", [new_item("short dict", op.writes)]), ("step", op.writes)]
        reference.put_writes(last.config, copy.deepcopy(writes), "step-task")
    # The reference gets a copy made now: the writer's objects may change in place later.
    reference.put(last.config, copy.deepcopy(checkpoint), metadata, new_versions)  # type: ignore[arg-type]
    if isinstance(saver, AsyncDriven):
        written = saver.put_after_writes(last.config, checkpoint, metadata, new_versions, writes)
    else:
        if writes is not None:
            saver.put_writes(last.config, writes, "step-task")
        written = saver.put(last.config, checkpoint, metadata, new_versions)  # type: ignore[arg-type]
    example.made.setdefault(op.thread, []).append(checkpoint["id"])
    example.seen[key] = Seen(written, values, checkpoint["channel_versions"])


def check(savers: dict[str, BaseCheckpointSaver], example: Example, op: Any) -> None:
    reference = savers["reference"]
    if isinstance(op, Put):
        put(savers, example, op)
    elif isinstance(op, Read):
        made = example.made.get(op.thread) or [None]
        picked = None if op.pick is None else made[op.pick % len(made)]
        config = example.config(op.thread, picked)
        found = savers[op.reader].get_tuple(config)
        assert stored(found) == stored(reference.get_tuple(config)), op
        if found is not None and op.pick is None and op.reader != "new":  # a run resumes from it
            example.seen[op.reader, op.thread] = Seen.of(found)
    elif isinstance(op, List):
        config = example.config(op.thread)
        listed = [stored(t) for t in savers[op.reader].list(config, limit=op.limit)]
        assert listed == [stored(t) for t in reference.list(config, limit=op.limit)], op
    elif isinstance(op, PutWrites):
        last = example.seen.get((op.writer, op.thread))
        if last is not None and last.config["configurable"].get("checkpoint_id"):
            writes = [("items", [new_item("short dict", op.value)]), ("step", op.value)]
            savers[op.writer].put_writes(last.config, writes, op.task)
            reference.put_writes(last.config, copy.deepcopy(writes), op.task)
    elif isinstance(op, Copy):
        source, target = example.thread_id(op.source), example.thread_id(op.target)
        # Copying a missing thread, or onto one that has checkpoints, is refused: tested elsewhere.
        if has_checkpoints(reference, source) and not has_checkpoints(reference, target):
            savers[op.writer].copy_thread(source, target)  # type: ignore[attr-defined]
            reference.copy_thread(source, target)  # type: ignore[attr-defined]
            thread, target_thread = op.source.partition("/")[0], op.target.partition("/")[0]
            for where in THREADS:
                if where.partition("/")[0] == thread:
                    example.made[where.replace(thread, target_thread, 1)] = list(example.made.get(where, []))
    elif isinstance(op, Delete):
        savers[op.writer].delete_thread(example.thread_id(op.thread))
        reference.delete_thread(example.thread_id(op.thread))
    elif isinstance(op, DeleteRun):
        savers[op.writer].delete_for_runs([f"{example.prefix}run-{op.run}"])  # type: ignore[attr-defined]
        reference.delete_for_runs([f"{example.prefix}run-{op.run}"])  # type: ignore[attr-defined]
    elif isinstance(op, Prune):
        savers[op.writer].prune([example.thread_id(op.thread)], strategy="keep_latest")  # type: ignore[attr-defined]
        reference.prune([example.thread_id(op.thread)], strategy="keep_latest")  # type: ignore[attr-defined]


def has_checkpoints(saver: Any, thread_id: str) -> bool:
    return any(True for _ in saver.list({"configurable": {"thread_id": thread_id}}, limit=1))


class AsyncDriven:
    """A checkpointer driven through its async methods, each run to completion on one event loop, so
    the operations above take the async paths (and pending writes saved beside a put ride with it)."""

    def __init__(self, saver: PostgresCheckpointer, loop: asyncio.AbstractEventLoop) -> None:
        self.saver, self.run = saver, loop.run_until_complete

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.run(self.saver.aget_tuple(config))

    def list(self, config: RunnableConfig, *, limit: int | None = None) -> list[CheckpointTuple]:
        async def listed() -> list[CheckpointTuple]:
            return [found async for found in self.saver.alist(config, limit=limit)]

        return self.run(listed())

    def put_writes(self, config: RunnableConfig, writes: list[tuple[str, Any]], task_id: str) -> None:
        self.run(self.saver.aput_writes(config, writes, task_id))

    def put_after_writes(
        self,
        config: RunnableConfig,
        checkpoint: dict[str, Any],
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        writes: list[tuple[str, Any]] | None,
    ) -> RunnableConfig:
        """The put, and the parent's pending writes saved at once beside it, as a graph step does."""

        async def both() -> RunnableConfig:
            put = self.saver.aput(config, checkpoint, metadata, new_versions)  # type: ignore[arg-type]
            if writes is None:
                return await put
            _, written = await asyncio.gather(self.saver.aput_writes(config, writes, "step-task"), put)
            return written

        return self.run(both())

    def delete_thread(self, thread_id: str) -> None:
        self.run(self.saver.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: list[str]) -> None:
        self.run(self.saver.adelete_for_runs(run_ids))

    def prune(self, thread_ids: list[str], *, strategy: str) -> None:
        self.run(self.saver.aprune(thread_ids, strategy=strategy))

    def copy_thread(self, source: str, target: str) -> None:
        self.run(self.saver.acopy_thread(source, target))


def open_processes(
    stack: ExitStack, request: pytest.FixtureRequest, keys: Keys | None = None
) -> dict[str, Any]:
    """Checkpointers "A" and "B", as two processes, and "new", as a process new to every thread (no
    item cache): on one SQLite file when the fixture's param is "sqlite" (SQLite keeps nothing
    between calls), else on the module's Postgres database."""
    if request.param == "sqlite":
        url = (
            f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp('two-processes') / 'threads.db'}"
        )
        return {name: stack.enter_context(open_checkpointer(url)) for name in ("A", "B", "new")}
    url = request.getfixturevalue("pg_url")
    return {
        "A": stack.enter_context(PostgresCheckpointer(url, keys=keys)),
        "B": stack.enter_context(PostgresCheckpointer(url, keys=keys)),
        "new": stack.enter_context(PostgresCheckpointer(url, keys=keys, item_cache_bytes=0)),
    }


def closing_loop(stack: ExitStack, savers: Iterable[PostgresCheckpointer]) -> asyncio.AbstractEventLoop:
    """An event loop for the savers' async methods, closed with ``stack`` once their async pools are."""
    loop = asyncio.new_event_loop()
    stack.callback(loop.close)
    for saver in savers:  # run before the loop closes: the async pools close in their loop
        stack.callback(loop.run_until_complete, saver.aclose())
    return loop


@pytest.fixture(scope="module", params=["plain", "encrypted", "async", "sqlite"])
def savers(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    keys = Keys(b"k" * 32) if request.param == "encrypted" else None
    with ExitStack() as stack:
        running = open_processes(stack, request, keys)
        if request.param == "async":
            loop = closing_loop(stack, running.values())
            running = {name: AsyncDriven(saver, loop) for name, saver in running.items()}
        yield {**running, "reference": stack.enter_context(open_checkpointer("memory://"))}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.lists(puts, min_size=4, max_size=12), more=st.lists(operations, min_size=5, max_size=40))
def test_two_processes_read_back_what_the_reference_holds(
    savers: dict[str, BaseCheckpointSaver], seed: list[Put], more: list[Any]
) -> None:
    example = Example()
    for op in seed + more:
        check(savers, example, op)
    for thread in THREADS:  # and at the end, every checkpoint of every thread, from each reader
        for reader in ("A", "B", "new"):
            config = example.config(thread)
            listed = [stored(t) for t in savers[reader].list(config)]
            assert listed == [stored(t) for t in savers["reference"].list(config)], (reader, thread)
