"""Time travel onto a new thread: a checkpoint and its ancestors copied, the source untouched."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from durable_graph.errors import DurableGraphError
from durable_graph.runs.settings import thread_config
from durable_graph.runs.status import thread_chain


class ThreadExistsError(DurableGraphError, ValueError):
    """A new thread id was asked for, but a thread with that id already exists."""


def fork_thread(saver: BaseCheckpointSaver, source: str, checkpoint_id: str, target: str) -> RunnableConfig:
    """Copy checkpoint ``checkpoint_id`` of thread ``source`` and its ancestors to a new thread.

    The copies keep their ids, parents, metadata and writes, except that the writes recorded on
    ``checkpoint_id`` itself are left out: continuing the new thread runs the next nodes again from
    exactly that state. The source thread is not touched. Returns the config of the copy.
    """
    if saver.get_tuple(thread_config(target)) is not None:
        raise ThreadExistsError(f"thread {target!r} already exists; choose another --thread id")
    chain = thread_chain(saver, source, checkpoint_id)
    parent: str | None = None
    for saved in chain:
        conf: RunnableConfig = {"configurable": {"thread_id": target, "checkpoint_ns": ""}}
        if parent is not None:
            conf["configurable"]["checkpoint_id"] = parent
        checkpoint = saved.checkpoint
        metadata = dict(saved.metadata or {})
        if saved is chain[-1]:
            metadata["dg_forked_from"] = f"{source}@{checkpoint_id}"
        stored = saver.put(conf, checkpoint, metadata, dict(checkpoint["channel_versions"]))  # type: ignore[arg-type]
        if saved is not chain[-1]:
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in saved.pending_writes or []:
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                saver.put_writes(stored, writes, task_id)
        parent = checkpoint["id"]
    return thread_config(target)
