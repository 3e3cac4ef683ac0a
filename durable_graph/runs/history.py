"""A thread's checkpoints as a timeline: which node wrote each one, when, and what it changed."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from durable_graph.runs.agent import build_graph
from durable_graph.runs.describe import describe_update
from durable_graph.runs.settings import thread_config
from durable_graph.runs.status import saved_settings


def inspection_graph(saver: BaseCheckpointSaver, thread_id: str) -> Pregel:
    """The graph of a stored thread, built for reading its state only (``build_graph``'s
    ``inspect_only``), or ``ThreadNotFoundError``."""
    return build_graph(saved_settings(saver, thread_id), saver, inspect_only=True)


def thread_history(graph: Pregel, thread_id: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The checkpoints of a thread, oldest first (``history_rows``); with ``limit``, only the latest
    ``limit``, read without the rest of the history (one more is read: it names the oldest row's node)."""
    read = None if limit is None else limit + 1
    rows = history_rows(list(graph.get_state_history(thread_config(thread_id), limit=read)))
    return rows if limit is None else rows[-limit:] if limit else []


def history_rows(snapshots: list[StateSnapshot]) -> list[dict[str, Any]]:
    """Checkpoints oldest first; ``node`` is the node whose writes made it (the parent's next nodes)
    and ``changed`` says in one line what those writes changed."""
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in snapshots}
    rows = []
    for snap in reversed(snapshots):
        metadata = snap.metadata or {}
        source = metadata.get("source", "")
        parent_id = (snap.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        parent = by_id.get(parent_id)
        node = ", ".join(parent.next) if source == "loop" and parent is not None else None
        rows.append(
            {
                "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                "parent_id": parent_id,
                "step": metadata.get("step"),
                "source": source,
                "node": node if node else (source if source in ("input", "update", "fork") else None),
                "changed": _changed(parent) if source == "loop" and parent is not None else "",
                "next": list(snap.next),
                "created_at": snap.created_at,
                "interrupts": [i.value for i in snap.interrupts],
            }
        )
    return rows


def _changed(parent: StateSnapshot) -> str:
    """What the tasks of ``parent`` wrote (the results LangGraph read back from their writes)."""
    updates = [task.result for task in parent.tasks if isinstance(task.result, dict)]
    return "; ".join(describe_update(update) for update in updates)
