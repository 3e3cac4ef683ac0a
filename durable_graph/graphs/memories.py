"""Long-term memory nodes: ``recall`` before planning and ``remember`` after a successful run.

Memories live in any LangGraph ``BaseStore`` (only its public API is used) under the namespace
``("memories", user_id)``. Each is a dict with ``text`` (what is embedded and searched), ``task``,
``answer``, ``outcome``, ``tools`` and ``useful_count``: how many successful runs recalled it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableLambda
from langgraph.store.base import BaseStore, Item, SearchItem

from durable_graph.graphs.prompts import one_line, run_call_ids
from durable_graph.graphs.state import DEFAULT_USER_ID

NAMESPACE = "memories"
MAX_TEXT = 2000

Node = RunnableLambda[Any, dict[str, Any]]


def memory_namespace(user_id: str) -> tuple[str, str]:
    """Where the memories of ``user_id`` are stored."""
    return (NAMESPACE, user_id)


@dataclass(frozen=True)
class Ranking:
    """How recalled memories are ordered: a weighted sum of three scores between 0 and 1.

    - similarity: the store's search score (cosine similarity with the task);
    - recency: halves every ``half_life_days`` since the memory was last written or credited;
    - usefulness: ``1 - 1 / (1 + useful_count)``, so 0 for a new memory, 0.5 after one success.
    """

    similarity: float = 0.7
    recency: float = 0.2
    usefulness: float = 0.1
    half_life_days: float = 30.0

    def score(self, item: Item, now: datetime) -> float:
        similarity = min(max(getattr(item, "score", None) or 0.0, 0.0), 1.0)
        updated = item.updated_at if item.updated_at.tzinfo else item.updated_at.replace(tzinfo=UTC)
        age_days = max((now - updated).total_seconds(), 0.0) / 86400
        recency = math.pow(0.5, age_days / self.half_life_days)
        uses = max(int(item.value.get("useful_count", 0)), 0)
        return self.similarity * similarity + self.recency * recency + self.usefulness * (1 - 1 / (1 + uses))


def rank_memories(
    items: list[SearchItem], *, limit: int, ranking: Ranking | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The ``limit`` best ``items`` as memory dicts (``key``, ``text``, ``score``, ...), best first."""
    ranking, now = ranking or Ranking(), now or datetime.now(UTC)
    scored = sorted(((ranking.score(i, now), i) for i in items), key=lambda p: (-p[0], p[1].key))
    return [
        {
            "key": item.key,
            "text": str(item.value.get("text", "")),
            "score": round(score, 6),
            "similarity": item.score,
            "useful_count": int(item.value.get("useful_count", 0)),
            "updated_at": item.updated_at.isoformat(),
        }
        for score, item in scored[:limit]
    ]


def make_recall_node(store: BaseStore, *, limit: int = 5, ranking: Ranking | None = None) -> Node:
    """The ``recall`` node: the user's ``limit`` memories most relevant to the task, into ``memories``.

    It fetches more candidates than it keeps from the store's similarity search and re-ranks them
    with ``ranking`` (similarity, recency, usefulness).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")

    def search_args(state: dict[str, Any]) -> tuple[tuple[str, str], dict[str, Any]]:
        namespace = memory_namespace(state.get("user_id") or DEFAULT_USER_ID)
        return namespace, {"query": state.get("task", ""), "limit": limit * 4}

    def recall(state: dict[str, Any]) -> dict[str, Any]:
        namespace, kwargs = search_args(state)
        return {"memories": rank_memories(store.search(namespace, **kwargs), limit=limit, ranking=ranking)}

    async def arecall(state: dict[str, Any]) -> dict[str, Any]:
        namespace, kwargs = search_args(state)
        found = await store.asearch(namespace, **kwargs)
        return {"memories": rank_memories(found, limit=limit, ranking=ranking)}

    return RunnableLambda(recall, afunc=arecall, name="recall")


def make_remember_node(store: BaseStore) -> Node:
    """The ``remember`` node, run after an accepted answer.

    Stores what the run learned (task, answer, outcome) when it used tools, and adds one to the
    ``useful_count`` of every memory recalled for this run. Writing the same task and answer again
    updates the existing memory instead of adding a copy.
    """

    def remember(state: dict[str, Any]) -> dict[str, Any]:
        namespace = memory_namespace(state.get("user_id") or DEFAULT_USER_ID)
        for key in recalled_keys(state):
            item = store.get(namespace, key)
            if item is not None:
                store.put(namespace, key, credited(item), index=["text"])
        if (new := learned(state)) is not None:
            key, value = new
            value["useful_count"] = useful_count(store.get(namespace, key))
            store.put(namespace, key, value, index=["text"])
        return {}

    async def aremember(state: dict[str, Any]) -> dict[str, Any]:
        namespace = memory_namespace(state.get("user_id") or DEFAULT_USER_ID)
        for key in recalled_keys(state):
            item = await store.aget(namespace, key)
            if item is not None:
                await store.aput(namespace, key, credited(item), index=["text"])
        if (new := learned(state)) is not None:
            key, value = new
            value["useful_count"] = useful_count(await store.aget(namespace, key))
            await store.aput(namespace, key, value, index=["text"])
        return {}

    return RunnableLambda(remember, afunc=aremember, name="remember")


def recalled_keys(state: dict[str, Any]) -> list[str]:
    return [m["key"] for m in state.get("memories") or [] if m.get("key")]


def credited(item: Item) -> dict[str, Any]:
    """``item``'s value with its ``useful_count`` one higher."""
    return {**item.value, "useful_count": useful_count(item) + 1}


def useful_count(item: Item | None) -> int:
    return int(item.value.get("useful_count", 0)) if item is not None else 0


def learned(state: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The key and value of the memory a successful run leaves, or None when it used no tools."""
    answer = state.get("final_answer")
    evaluation = state.get("evaluation") or {}
    ids = run_call_ids(state.get("messages", []))
    results = [r for r in state.get("tool_results", []) if r.get("call_id") in ids]
    if not answer or evaluation.get("verdict") != "done" or not results:
        return None
    task = state.get("task", "")
    text = one_line(f"Task: {task} Answer: {answer}")[:MAX_TEXT]
    value = {
        "text": text,
        "task": task,
        "answer": answer,
        "outcome": evaluation.get("reason", ""),
        "tools": sorted({r["tool"] for r in results}),
    }
    return hashlib.sha256(f"{task}\n{answer}".encode()).hexdigest()[:32], value
