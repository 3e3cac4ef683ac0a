"""``prune_keep(thread_ids, keep)``: keeping the N newest checkpoints of every namespace, on real
graphs and real databases, and ``durable-graph prune --keep N``."""

from __future__ import annotations

import json
import operator
import re
import sqlite3
import uuid
from collections import defaultdict
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from typer.testing import CliRunner, Result

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres.schema import TABLES
from durable_graph.cli import app
from tests.checkpoint_graphs import delta_graph, item
from tests.test_postgres_checkpointer import put_checkpoint


class State(TypedDict, total=False):
    items: Annotated[list[str], operator.add]  # grows: stored as chunked list items
    scratch: list[str]  # replaced every step: its old items become garbage
    count: int


class Notes(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]


def notes_graph() -> CompiledStateGraph:
    builder = StateGraph(Notes)
    builder.add_node("one", lambda state: {"notes": ["one"]})
    builder.add_node("two", lambda state: {"notes": ["two"]})
    builder.add_edge(START, "one")
    builder.add_edge("one", "two")
    builder.add_edge("two", END)
    return builder.compile()


NOTES = notes_graph()


def looping_graph(saver: Any) -> CompiledStateGraph:
    """``step`` then ``sub`` (a subgraph run: its checkpoints go to a namespace of their own), three
    times, then ``gate`` waits for an answer with ``interrupt`` (a pending write on the head)."""

    def step(state: State) -> State:
        count = state.get("count", 0) + 1
        return {
            "items": [item(f"i-{count}")],
            "scratch": [item(f"s-{count}-a"), item(f"s-{count}-b")],
            "count": count,
        }

    def sub(state: State) -> State:
        return {"items": ["+".join(NOTES.invoke({"notes": [f"n-{state['count']}"]})["notes"])]}

    def gate(state: State) -> State:
        answer = interrupt(f"continue after {state['count']}?")
        return {"items": [f"ok-{answer}"]}

    builder = StateGraph(State)
    builder.add_node("step", step)
    builder.add_node("sub", sub)
    builder.add_node("gate", gate)
    builder.add_edge(START, "step")
    builder.add_edge("step", "sub")
    builder.add_conditional_edges("sub", lambda state: "gate" if state["count"] % 3 == 0 else "step")
    builder.add_edge("gate", END)
    return builder.compile(checkpointer=saver)


def expected_items(counts: range, answer: str | None) -> list[str]:
    items = [entry for c in counts for entry in (item(f"i-{c}"), f"n-{c}+one+two")]
    return items + ([f"ok-{answer}"] if answer else [])


def config(thread_id: str, checkpoint_ns: str | None = None) -> RunnableConfig:
    configurable = {"thread_id": thread_id}
    if checkpoint_ns is not None:
        configurable["checkpoint_ns"] = checkpoint_ns
    return {"configurable": configurable}


def run_two_rounds(graph: CompiledStateGraph, thread_id: str) -> None:
    """Six steps in two runs; the thread ends waiting at ``gate``."""
    graph.invoke({"count": 0}, config(thread_id))
    graph.invoke(Command(resume="yes"), config(thread_id))
    graph.invoke({"items": ["more"]}, config(thread_id))
    assert graph.get_state(config(thread_id)).next == ("gate",)


def ids_by_ns(saver: BaseCheckpointSaver, thread_id: str) -> dict[str, list[str]]:
    """Checkpoint ids of every namespace of the thread, oldest first."""
    found: dict[str, list[str]] = defaultdict(list)
    for tup in saver.list(config(thread_id)):
        found[tup.config["configurable"]["checkpoint_ns"]].append(tup.checkpoint["id"])
    return {ns: sorted(ids) for ns, ids in found.items()}


def snapshot(saver: BaseCheckpointSaver, thread_id: str) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
    """``(ns, id) -> (channel values, pending writes, parent id)`` of every checkpoint of the thread."""
    return {
        (t.config["configurable"]["checkpoint_ns"], t.checkpoint["id"]): (
            t.checkpoint["channel_values"],
            sorted(t.pending_writes or [], key=repr),
            (t.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
        )
        for t in saver.list(config(thread_id))
    }


def stored_rows(saver: Any, url: str, thread_id: str) -> dict[str, int]:
    """Rows of the value, list item and write tables (entries of the memory saver's dicts)."""
    if url.startswith("memory:"):
        return {
            "blobs": sum(key[0] == thread_id for key in saver.blobs),
            "writes": sum(len(w) for key, w in saver.writes.items() if key[0] == thread_id),
        }
    tables = [t for t in TABLES if t != "dg_checkpoints"]
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return {
                t: conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = ?", (thread_id,)).fetchone()[0]
                for t in tables
            }
    with psycopg.connect(url) as conn:
        counts = {}
        for t in tables:
            row = conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = %s", (thread_id,)).fetchone()
            counts[t] = row[0] if row else 0
        return counts


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/x.db"
    return str(request.getfixturevalue("pg_url"))


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def test_keeps_the_newest_checkpoints_of_every_namespace(url: str) -> None:
    with open_checkpointer(url) as saver:
        graph = looping_graph(saver)
        pruned, other = new_id("pruned"), new_id("other")
        for thread_id in (pruned, other):
            run_two_rounds(graph, thread_id)
        before = ids_by_ns(saver, pruned)
        assert len(before) > 2 and all(len(ids) > 3 for ids in before.values())
        other_before = snapshot(saver, other)
        full = snapshot(saver, pruned)
        rows_before = stored_rows(saver, url, pruned)

        saver.prune_keep([pruned], 3)

        after = ids_by_ns(saver, pruned)
        assert after == {ns: ids[-3:] for ns, ids in before.items()}
        # every kept checkpoint loads whole; the oldest kept one of a namespace lost its parent
        kept = snapshot(saver, pruned)
        for (ns, checkpoint_id), (values, writes, parent) in kept.items():
            assert (values, writes) == full[ns, checkpoint_id][:2]
            assert parent == (None if checkpoint_id == after[ns][0] else full[ns, checkpoint_id][2])
        assert snapshot(saver, other) == other_before
        rows_after = stored_rows(saver, url, pruned)
        assert all(rows_after[table] < rows_before[table] for table in rows_before), (rows_before, rows_after)

        head = graph.get_state(config(pruned))
        assert head.next == ("gate",)
        assert [i.value for i in head.interrupts] == ["continue after 6?"]
        assert head.values["items"] == [
            *expected_items(range(1, 4), "yes"),
            "more",
            *expected_items(range(4, 7), None),
        ]
        assert head.values["scratch"] == [item("s-6-a"), item("s-6-b")]

        # the pruned thread resumes and runs on exactly like the untouched one
        for thread_id in (pruned, other):
            graph.invoke(Command(resume="go"), config(thread_id))
            graph.invoke({"items": ["again"]}, config(thread_id))
        values = graph.get_state(config(pruned)).values
        assert values == graph.get_state(config(other)).values
        assert values["items"][-8:] == ["ok-go", "again", *expected_items(range(7, 10), None)]
        assert values["count"] == 9


def test_keep_1_is_keep_latest(url: str) -> None:
    with open_checkpointer(url) as saver:
        graph = looping_graph(saver)
        by_keep, by_strategy = new_id("keep1"), new_id("latest")
        run_two_rounds(graph, by_keep)
        saver.copy_thread(by_keep, by_strategy)
        assert ids_by_ns(saver, by_keep) == ids_by_ns(saver, by_strategy)

        saver.prune_keep([by_keep], 1)
        saver.prune([by_strategy], strategy="keep_latest")

        kept = ids_by_ns(saver, by_keep)
        assert all(len(ids) == 1 for ids in kept.values())
        assert kept == ids_by_ns(saver, by_strategy)
        assert snapshot(saver, by_keep) == snapshot(saver, by_strategy)
        assert stored_rows(saver, url, by_keep) == stored_rows(saver, url, by_strategy)


def test_a_keep_larger_than_the_history_changes_nothing(url: str) -> None:
    with open_checkpointer(url) as saver:
        graph = looping_graph(saver)
        thread_id = new_id("short")
        run_two_rounds(graph, thread_id)
        before, rows = snapshot(saver, thread_id), stored_rows(saver, url, thread_id)
        saver.prune_keep([thread_id, "no-such-thread"], 1000)
        saver.prune_keep([], 2)
        assert snapshot(saver, thread_id) == before
        assert stored_rows(saver, url, thread_id) == rows


def test_a_checkpoint_put_after_its_parent_was_pruned_loses_that_parent_at_the_next_prune(url: str) -> None:
    """A run that went on from a checkpoint another process pruned meanwhile names a parent that is
    gone; a prune leaves no kept checkpoint naming a missing parent, whenever it went."""
    with open_checkpointer(url) as saver:
        thread_id = new_id("dangling")
        put = partial(put_checkpoint, saver, thread_id)
        first = put({"items": [item("a")]})
        put({"items": [item("a"), item("b")]}, parent=first)
        saver.prune_keep([thread_id], 1)
        went_on = put({"items": [item("a"), item("c")]}, parent=first)
        last = put({"items": [item("d")]}, parent=went_on)
        named = saver.get_tuple(went_on)
        assert named is not None and named.parent_config == first

        saver.prune_keep([thread_id], 2)

        kept = {t.config["configurable"]["checkpoint_id"]: t for t in saver.list(config(thread_id))}
        went_on_id, last_id = went_on["configurable"]["checkpoint_id"], last["configurable"]["checkpoint_id"]
        assert list(kept) == [last_id, went_on_id]
        assert kept[went_on_id].parent_config is None
        assert kept[last_id].parent_config == went_on
        assert kept[went_on_id].checkpoint["channel_values"] == {"items": [item("a"), item("c")]}


@pytest.mark.parametrize("bad", [0, -3, 2.5, "3", None, True])
def test_bad_keep_is_a_value_error_naming_it(url: str, bad: Any) -> None:
    with open_checkpointer(url) as saver:
        graph = looping_graph(saver)
        thread_id = new_id("bad")
        run_two_rounds(graph, thread_id)
        before = ids_by_ns(saver, thread_id)
        with pytest.raises(ValueError, match=f"got {re.escape(repr(bad))}"):
            saver.prune_keep([thread_id], bad)
        with pytest.raises(TypeError, match="not the string"):
            saver.prune_keep(thread_id, 2)
        assert ids_by_ns(saver, thread_id) == before


async def test_async_prune_keep(url: str) -> None:
    async with open_checkpointer(url) as saver:
        graph = looping_graph(saver)
        thread_id = new_id("async")
        await graph.ainvoke({"count": 0}, config(thread_id))
        await graph.ainvoke(Command(resume="yes"), config(thread_id))
        before: dict[str, list[str]] = defaultdict(list)
        async for tup in saver.alist(config(thread_id)):
            before[tup.config["configurable"]["checkpoint_ns"]].append(tup.checkpoint["id"])
        with pytest.raises(ValueError, match="got 0"):
            await saver.aprune_keep([thread_id], 0)

        await saver.aprune_keep([thread_id], 2)

        after: dict[str, list[str]] = defaultdict(list)
        async for tup in saver.alist(config(thread_id)):
            after[tup.config["configurable"]["checkpoint_ns"]].append(tup.checkpoint["id"])
        assert {ns: sorted(ids) for ns, ids in after.items()} == {
            ns: sorted(ids)[-2:] for ns, ids in before.items()
        }
        await graph.ainvoke({"items": ["more"]}, config(thread_id))
        state = await graph.aget_state(config(thread_id))
        assert state.values["items"] == [
            *expected_items(range(1, 4), "yes"),
            "more",
            *expected_items(range(4, 7), None),
        ]


def test_delta_channel_threads_are_refused_and_kept_whole(url: str) -> None:
    with open_checkpointer(url) as saver:
        graph = delta_graph(saver)
        thread_id = new_id("delta")
        for _ in range(5):
            graph.invoke({}, config(thread_id))
        before = ids_by_ns(saver, thread_id)
        with pytest.raises(NotImplementedError, match=rf"prune_keep\(keep=2\).*DeltaChannel: {thread_id}"):
            saver.prune_keep([thread_id], 2)
        assert ids_by_ns(saver, thread_id) == before
        assert len(graph.get_state(config(thread_id)).values["log"]) == 5


# -- the CLI ---------------------------------------------------------------------------------------


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_cli_prune_keep_n(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    (tmp_path / "notes.txt").write_text("42 apples\n")
    work = ["--workdir", str(tmp_path), "--url", url]
    assert cli("run", "what is 1 + 2?", "--thread", "k-done", *work).exit_code == 0
    waiting = cli("run", "search for apples in my files and write a report", "--thread", "k-wait", *work)
    assert waiting.exit_code == 4, waiting.output
    with open_checkpointer(url) as saver:
        before = {t: ids_by_ns(saver, t) for t in ("k-done", "k-wait")}
    assert all(len(ids[""]) > 2 for ids in before.values())

    def stored() -> dict[str, dict[str, list[str]]]:
        with open_checkpointer(url) as saver:
            return {t: ids_by_ns(saver, t) for t in before}

    zero = cli("prune", "--keep", "0", "--url", url)
    assert zero.exit_code == 2, zero.output
    dry = cli("prune", "--keep", "2", "--dry-run", "--url", url)
    assert dry.exit_code == 0, dry.output
    assert "would keep only the latest 2 checkpoints of 2 thread(s)" in dry.stdout
    assert stored() == before

    kept = cli("prune", "--keep", "2", "--url", url)
    assert kept.exit_code == 0, kept.output
    assert "kept only the latest 2 checkpoints of 2 thread(s)" in kept.stdout
    assert stored() == {t: {ns: ids[-2:] for ns, ids in by_ns.items()} for t, by_ns in before.items()}

    listed = {t["thread_id"]: t["status"] for t in json.loads(cli("threads", "--json", "--url", url).stdout)}
    assert listed == {"k-done": "done", "k-wait": "interrupted"}
    history = cli("history", "k-done", "--json", "--url", url)
    assert history.exit_code == 0, history.output
    assert len(json.loads(history.stdout)) == 2
    approved = cli("approve", "k-wait", "--url", url)
    assert approved.exit_code == 0, approved.output
    listed = {t["thread_id"]: t["status"] for t in json.loads(cli("threads", "--json", "--url", url).stdout)}
    assert listed == {"k-done": "done", "k-wait": "done"}
