"""Long-term memory: recall before planning, remember after success, ranking of recalled memories."""

from __future__ import annotations

import math
import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import IndexConfig, SearchItem
from langgraph.store.memory import InMemoryStore

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import (
    Ranking,
    ScriptedModel,
    agent_input,
    build_agent,
    demo_tools,
    memory_namespace,
    rank_memories,
)

DIMS = 64


def hashing_embed(texts: Sequence[str]) -> list[list[float]]:
    """A small deterministic test embedding: normalized counts of hashed words."""
    vectors = []
    for text in texts:
        v = [0.0] * DIMS
        for word in text.lower().split():
            v[zlib.crc32(word.strip(".,:;?!'\"").encode()) % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        vectors.append([x / norm for x in v])
    return vectors


def new_store() -> InMemoryStore:
    index: IndexConfig = {"dims": DIMS, "embed": hashing_embed}
    return InMemoryStore(index=index)


def config() -> RunnableConfig:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "vault.txt").write_text("shopping: apples\nThe launch code is 4417.\n")
    return tmp_path


def test_with_a_store_the_graph_gains_recall_and_remember(workdir: Path) -> None:
    graph = build_agent(ScriptedModel(), demo_tools(workdir), store=new_store())
    assert set(graph.nodes) == {"recall", "plan", "tool", "evaluate", "remember"}


def test_a_second_thread_recalls_what_only_the_first_discovered(workdir: Path) -> None:
    store = new_store()
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), store=store).compile(
            checkpointer=saver, store=store
        )
        first = graph.invoke(agent_input("find the launch code in the files", user_id="ann"), config())
        assert "4417" in first["final_answer"]
        (workdir / "vault.txt").unlink()  # the fact now exists only in the first thread's memory

        second = graph.invoke(agent_input("What is the launch code?", user_id="ann"), config())

    assert second["evaluation"] == {
        "verdict": "done",
        "reason": "the answer comes from a memory of an earlier run",
    }
    assert "The launch code is 4417." in second["final_answer"]
    assert second["tool_results"] == []
    (recalled,) = second["memories"]
    assert recalled["useful_count"] == 0
    # the recalled memory proved useful: its counter went up; answering from memory adds no new one
    (item,) = store.search(memory_namespace("ann"))
    assert item.key == recalled["key"]
    assert item.value["useful_count"] == 1
    assert item.value["tools"] == ["search_files"]
    assert item.value["task"] == "find the launch code in the files"


def test_memories_belong_to_one_user(workdir: Path) -> None:
    store = new_store()
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), store=store, max_steps=2).compile(
            checkpointer=saver
        )
        graph.invoke(agent_input("find the launch code in the files", user_id="ann"), config())
        (workdir / "vault.txt").unlink()
        other = graph.invoke(agent_input("What is the launch code?", user_id="bob"), config())

    assert other["memories"] == []
    assert other["final_answer"] is None
    assert other["evaluation"]["verdict"] == "stopped"
    assert store.search(memory_namespace("bob")) == []


async def test_recall_and_remember_under_ainvoke(workdir: Path) -> None:
    store = new_store()
    async with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), store=store).compile(checkpointer=saver)
        await graph.ainvoke(agent_input("find the launch code in the files"), config())
        # the same task and answer again update the memory instead of adding a copy
        again = await graph.ainvoke(agent_input("find the launch code in the files"), config())

    assert [m["useful_count"] for m in again["memories"]] == [0]
    (item,) = await store.asearch(memory_namespace("default"))
    assert item.value["useful_count"] == 1


def test_failed_runs_leave_no_memory(workdir: Path) -> None:
    store = new_store()
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), store=store, max_steps=2).compile(
            checkpointer=saver
        )
        out = graph.invoke(agent_input("find zebra in the files"), config())
    assert out["evaluation"]["verdict"] == "stopped"
    assert store.search(memory_namespace("default")) == []


def item(key: str, score: float | None, age_days: float, useful: int, now: datetime) -> SearchItem:
    when = now - timedelta(days=age_days)
    value = {"text": key, "useful_count": useful}
    return SearchItem(("memories", "u"), key, value, created_at=when, updated_at=when, score=score)


def test_ranking_weighs_similarity_recency_and_usefulness() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        item("similar", 0.9, 0, 0, now),
        item("old", 0.9, 365, 0, now),
        item("proven", 0.9, 0, 5, now),
        item("unrelated", 0.1, 0, 0, now),
    ]
    ranked = rank_memories(items, limit=3, now=now)
    assert [m["key"] for m in ranked] == ["proven", "similar", "old"]
    # with the default weights: 0.7 * 0.9 + 0.2 * 1 + 0.1 * (1 - 1/6)
    assert ranked[0]["score"] == pytest.approx(0.63 + 0.2 + 0.1 * 5 / 6)
    # only similarity counts when the other weights are zero
    by_similarity = rank_memories(items, limit=4, now=now, ranking=Ranking(recency=0, usefulness=0))
    assert by_similarity[-1]["key"] == "unrelated"
    assert [m["score"] for m in by_similarity[:3]] == pytest.approx([0.63] * 3)


def test_recency_halves_every_half_life() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ranking = Ranking(similarity=0, recency=1, usefulness=0, half_life_days=10)
    assert ranking.score(item("a", None, 10, 0, now), now) == pytest.approx(0.5)
    assert ranking.score(item("b", None, 20, 0, now), now) == pytest.approx(0.25)


def test_memories_persist_in_the_pgvector_store(pg_url: str, workdir: Path) -> None:
    from durable_graph.memory import open_store

    with open_store(pg_url, embed=hashing_embed, dims=DIMS) as store, open_checkpointer(pg_url) as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), store=store).compile(checkpointer=saver)
        first = graph.invoke(agent_input("find the launch code in the files", user_id="pg"), config())
        assert first["evaluation"]["verdict"] == "done"
    (workdir / "vault.txt").unlink()

    # a new store and checkpointer on the same database: only the stored memory knows the code
    with open_store(pg_url, embed=hashing_embed, dims=DIMS) as store, open_checkpointer(pg_url) as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), store=store).compile(checkpointer=saver)
        second = graph.invoke(agent_input("What is the launch code?", user_id="pg"), config())
        (item,) = store.search(memory_namespace("pg"))

    assert "The launch code is 4417." in second["final_answer"]
    assert second["memories"][0]["similarity"] > 0
    assert item.value["useful_count"] == 1
