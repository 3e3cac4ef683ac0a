"""Random sequences of checkpointer operations give the same observable results on every backend.

Each example is a list of operations (put, put_writes, get_tuple, list, delete_thread, copy_thread,
prune, delete_for_runs) applied in turn to the memory, SQLite and Postgres checkpointers, all opened
with ``open_checkpointer``, and to a Postgres checkpointer that keeps no items (every read is that
of a process new to the thread). After every operation the results (or the error type) must be equal once
normalized: tuples become plain data, pending writes and cross-thread listings are sorted.

Every example uses thread and run ids of its own, so the savers are opened once per module.
Examples: ``$DURABLE_GRAPH_PROPERTY_EXAMPLES`` (default 25, CI-sized); set it to e.g. 500 locally.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base import LATEST_VERSION, BaseCheckpointSaver, CheckpointTuple

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from tests.checkpoint_graphs import item
from tests.pg import fresh_database

EXAMPLES = int(os.environ.get("DURABLE_GRAPH_PROPERTY_EXAMPLES", "25"))

THREADS = ["a", "b", "c"]
NAMESPACES = ["", "sub"]
RUNS = ["r1", "r2"]
CHANNELS = ["count", "items", "note", "log"]


@dataclass(frozen=True)
class Put:
    thread: str
    ns: str
    run: str
    changes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class PutWrites:
    thread: str
    ns: str
    task: str
    writes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class GetTuple:
    thread: str
    ns: str
    pick: int | None  # None: latest; else the n-th checkpoint id made so far (may be gone)


@dataclass(frozen=True)
class ListCheckpoints:
    thread: str | None
    ns: str | None
    run: str | None
    before: int | None
    limit: int | None


@dataclass(frozen=True)
class DeleteThread:
    thread: str


@dataclass(frozen=True)
class CopyThread:
    source: str
    target: str


@dataclass(frozen=True)
class Prune:
    threads: tuple[str, ...]
    strategy: str


@dataclass(frozen=True)
class DeleteForRuns:
    runs: tuple[str, ...]


values = {
    "count": st.integers(-5, 5),
    "items": st.lists(st.sampled_from(["x", "y", "z", "x'; DROP TABLE t; --"]), max_size=4),
    "note": st.text(max_size=8),
    # The first n lines of one log: versions extend, shorten or repeat each other, and past 16
    # items the Postgres checkpointer stores them as tails and groups of items.
    "log": st.integers(0, 40).map(lambda n: [item(f"line {i}") for i in range(n)]),
}
changes = st.lists(
    st.sampled_from(CHANNELS).flatmap(lambda ch: st.tuples(st.just(ch), values[ch])),
    min_size=1,
    max_size=3,
    unique_by=lambda c: c[0],
).map(tuple)
write_channels = st.sampled_from(["count", "items", "note", "__error__", "__interrupt__"])
# Weighted towards one thread and the root namespace, so operations meet each other's data often.
threads = st.sampled_from(["a", "a", "a", "b", "c"])
namespaces = st.sampled_from(["", "", "", "sub"])
runs = st.sampled_from(RUNS)
picks = st.one_of(st.none(), st.integers(0, 30))

put = st.builds(Put, threads, namespaces, runs, changes)
put_writes = st.builds(
    PutWrites,
    threads,
    namespaces,
    st.sampled_from(["t1", "t2"]),
    st.lists(st.tuples(write_channels, st.integers(0, 9)), min_size=1, max_size=3).map(tuple),
)
reads = st.one_of(
    st.builds(GetTuple, threads, namespaces, picks),
    st.builds(
        ListCheckpoints,
        st.one_of(st.none(), threads),
        st.one_of(st.none(), namespaces),
        st.one_of(st.none(), runs),
        picks,
        st.one_of(st.none(), st.integers(1, 3)),
    ),
)
removals = st.one_of(
    st.builds(DeleteThread, threads),
    st.builds(CopyThread, threads, st.sampled_from(THREADS)),
    st.builds(
        Prune,
        st.lists(threads, max_size=2, unique=True).map(tuple),
        st.sampled_from(["keep_latest", "delete"]),
    ),
    st.builds(DeleteForRuns, st.lists(runs, max_size=2, unique=True).map(tuple)),
)
# Writes and reads are more frequent than removals, so threads grow before they are cut back.
operations = st.one_of(put, put, put, put_writes, put_writes, reads, reads, reads, removals)


class Example:
    """One example's ids (unique across examples) and the checkpoint ids it made so far."""

    def __init__(self) -> None:
        self.prefix = uuid.uuid4().hex[:10] + "-"
        self.made: list[str] = []
        self.counter = 0

    def thread(self, name: str) -> str:
        return self.prefix + name

    def next_id(self) -> str:
        self.counter += 1
        # Fixed-width hex, so text order is creation order (like uuid6 ids).
        return f"{self.prefix[:8]}-{self.counter:04x}-6000-8000-000000000000"

    def config(self, thread: str, ns: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        configurable = {"thread_id": self.thread(thread), "checkpoint_ns": ns}
        if checkpoint_id is not None:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    def local(self, thread_id: str) -> str:
        return thread_id.removeprefix(self.prefix)


def normalize(example: Example, item: CheckpointTuple | None) -> Any:
    if item is None:
        return None
    conf = item.config["configurable"]
    parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    checkpoint = item.checkpoint
    metadata = {k: v for k, v in item.metadata.items() if k != "run_id"}
    metadata["run"] = item.metadata.get("run_id", "").removeprefix(example.prefix)
    return (
        example.local(conf["thread_id"]),
        conf["checkpoint_ns"],
        conf["checkpoint_id"],
        checkpoint["id"],
        parent,
        checkpoint["channel_values"],
        sorted(checkpoint["channel_versions"]),
        sorted(metadata.items()),
        sorted(item.pending_writes or [], key=repr),
    )


def apply(saver: BaseCheckpointSaver, example: Example, op: Any) -> Any:
    """Run one operation; returns its normalized result, or the error type's name."""
    try:
        return _apply(saver, example, op)
    except Exception as exc:
        return ("error", type(exc).__name__)


def _apply(saver: BaseCheckpointSaver, example: Example, op: Any) -> Any:
    pick = getattr(op, "pick", None) if not isinstance(op, ListCheckpoints) else op.before
    picked = example.made[pick % len(example.made)] if pick is not None and example.made else None
    if isinstance(op, Put):
        latest = saver.get_tuple(example.config(op.thread, op.ns))
        base = latest.checkpoint if latest else None
        channel_values = dict(base["channel_values"]) if base else {}
        versions = dict(base["channel_versions"]) if base else {}
        new_versions = {}
        for channel, value in op.changes:
            channel_values[channel] = value
            new_versions[channel] = versions[channel] = f"{example.counter + 1:032}.{0:016}"
        checkpoint = {
            "v": LATEST_VERSION,
            "id": example.next_id(),
            "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": channel_values,
            "channel_versions": versions,
            "versions_seen": {},
            "pending_sends": [],
            "updated_channels": sorted(new_versions),
        }
        metadata = {
            "source": "loop",
            "step": example.counter,
            "parents": {},
            "run_id": example.prefix + op.run,
        }
        parent = example.config(op.thread, op.ns, latest.checkpoint["id"] if latest else None)
        stored = saver.put(parent, checkpoint, metadata, new_versions)  # type: ignore[arg-type]
        example.made.append(checkpoint["id"])
        return stored["configurable"]["checkpoint_id"]
    if isinstance(op, PutWrites):
        latest = saver.get_tuple(example.config(op.thread, op.ns))
        if latest is None:
            return "no checkpoint"
        saver.put_writes(latest.config, list(op.writes), op.task)
        return "ok"
    if isinstance(op, GetTuple):
        return normalize(example, saver.get_tuple(example.config(op.thread, op.ns, picked)))
    if isinstance(op, ListCheckpoints):
        config = None
        if op.thread is not None:
            config = {"configurable": {"thread_id": example.thread(op.thread)}}
            if op.ns is not None:
                config["configurable"]["checkpoint_ns"] = op.ns
        before = example.config(op.thread or "a", op.ns or "", picked) if picked else None
        filter = {"run_id": example.prefix + op.run} if op.run else None
        if op.thread is None:  # every thread: keep only this example's, in no particular order
            found = [t for t in saver.list(config, filter=filter, before=before) if _ours(example, t)]
            return sorted((normalize(example, t) for t in found), key=repr)[: op.limit]
        if op.ns is None:  # namespaces are listed in no agreed order (nor is a limit across them)
            found = list(saver.list(config, filter=filter, before=before))
            return sorted((normalize(example, t) for t in found), key=lambda n: n[1])
        return [
            normalize(example, t) for t in saver.list(config, filter=filter, before=before, limit=op.limit)
        ]
    if isinstance(op, DeleteThread):
        saver.delete_thread(example.thread(op.thread))
    elif isinstance(op, CopyThread):
        # Copying a missing thread, or onto a thread that has checkpoints, is an error whose
        # handling differs between backends: see test_copy_thread_refuses_bad_targets.
        if not _has_checkpoints(saver, example, op.source) or _has_checkpoints(saver, example, op.target):
            return "skipped"
        saver.copy_thread(example.thread(op.source), example.thread(op.target))
    elif isinstance(op, Prune):
        saver.prune([example.thread(t) for t in op.threads], strategy=op.strategy)
    elif isinstance(op, DeleteForRuns):
        saver.delete_for_runs([example.prefix + r for r in op.runs])
    return "ok"


def _has_checkpoints(saver: BaseCheckpointSaver, example: Example, thread: str) -> bool:
    return any(True for _ in saver.list({"configurable": {"thread_id": example.thread(thread)}}, limit=1))


def _ours(example: Example, item: CheckpointTuple) -> bool:
    return str(item.config["configurable"]["thread_id"]).startswith(example.prefix)


@pytest.fixture(scope="module")
def savers(
    pg_server: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, BaseCheckpointSaver]]:
    db = tmp_path_factory.mktemp("properties") / "props.db"
    with ExitStack() as stack:
        # A Postgres checkpointer that keeps no items reads every list as a process new to the
        # thread does (by its groups, past 16 items), on a database of its own.
        uncached_url = stack.enter_context(fresh_database(pg_server, "properties_uncached"))
        yield {
            "memory": stack.enter_context(open_checkpointer("memory://")),
            "sqlite": stack.enter_context(open_checkpointer(f"sqlite:///{db}")),
            "postgres": stack.enter_context(open_checkpointer(pg_url)),
            "postgres, nothing cached": stack.enter_context(
                PostgresCheckpointer(uncached_url, item_cache_bytes=0)
            ),
        }


def state_of(saver: BaseCheckpointSaver, example: Example) -> Any:
    """Everything the example's threads hold, in every namespace."""
    return {
        thread: sorted(
            (
                normalize(example, t)
                for t in saver.list({"configurable": {"thread_id": example.thread(thread)}})
            ),
            key=repr,
        )
        for thread in THREADS
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.lists(put, min_size=2, max_size=8), more=st.lists(operations, min_size=1, max_size=30))
def test_all_backends_agree(savers: dict[str, BaseCheckpointSaver], seed: list[Put], more: list[Any]) -> None:
    ops = seed + more  # a few puts first, so that the other operations find data
    names = list(savers)
    examples = {name: Example() for name in names}
    for prefix_source in names[1:]:  # same ids on every backend, so results compare as they are
        examples[prefix_source].prefix = examples[names[0]].prefix
    for step, op in enumerate(ops):
        results = {name: apply(savers[name], examples[name], op) for name in names}
        expected = results["memory"]
        for name in names[1:]:
            assert results[name] == expected, f"step {step}: {op} on {name} differs from memory"
    final = {name: state_of(savers[name], examples[name]) for name in names}
    for name in names[1:]:
        assert final[name] == final["memory"], f"final state of {name} differs from memory"


@pytest.mark.parametrize("name", ["memory", "sqlite", "postgres"])
def test_copy_thread_refuses_bad_targets(savers: dict[str, BaseCheckpointSaver], name: str) -> None:
    from durable_graph.errors import ThreadNotFoundError

    saver, example = savers[name], Example()
    for thread, count in (("a", 1), ("b", 2)):
        apply(saver, example, Put(thread, "", "r1", (("count", count),)))
    with pytest.raises(ThreadNotFoundError):
        saver.copy_thread(example.thread("c"), example.thread("d"))
    for target in ("b", "a"):
        with pytest.raises(ValueError, match="already has checkpoints"):
            saver.copy_thread(example.thread("a"), example.thread(target))
    assert [t.checkpoint["channel_values"] for t in saver.list(example.config("b", ""))] == [{"count": 2}]


@pytest.mark.parametrize("name", ["memory", "sqlite", "postgres"])
def test_a_copy_brings_only_the_source_writes(savers: dict[str, BaseCheckpointSaver], name: str) -> None:
    """Writes a task saved for a checkpoint of a thread deleted meanwhile are kept by no checkpoint;
    a copy onto that thread id brings the source's checkpoints back with the source's writes only."""
    saver, example = savers[name], Example()
    apply(saver, example, Put("a", "", "r1", (("count", 1),)))
    apply(saver, example, PutWrites("a", "", "t1", (("count", 2),)))
    apply(saver, example, Put("a", "", "r1", (("count", 3),)))
    saver.copy_thread(example.thread("a"), example.thread("b"))
    copies = list(saver.list(example.config("b", "")))
    saver.delete_thread(example.thread("b"))
    for copied in copies:  # a run still saving the writes of its tasks
        saver.put_writes(copied.config, [("count", 7), ("note", "late")], "t1")
        saver.put_writes(copied.config, [("note", "late")], "t2")

    saver.copy_thread(example.thread("a"), example.thread("b"))

    assert [t.pending_writes for t in saver.list(example.config("b", ""))] == [[], [("t1", "count", 2)]]
