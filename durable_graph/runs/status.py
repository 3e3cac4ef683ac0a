"""Where stored threads stand, read from their checkpoints: status, summaries, ancestry, age."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from durable_graph.errors import DurableGraphError, ThreadNotFoundError
from durable_graph.runs.settings import RunSettings, thread_config

Status = Literal["running", "interrupted", "done", "failed"]
STATUSES: tuple[Status, ...] = ("running", "interrupted", "done", "failed")
# Channels LangGraph writes to record what happened to a task, rather than what it produced
# (``langgraph.pregel._task_status.CONTROL_WRITES``).
_INTERRUPT = "__interrupt__"
_ERROR = "__error__"
_CONTROL = frozenset((_INTERRUPT, _ERROR, "__error_source_node__", "__resume__"))
_NULL_TASK = "00000000-0000-0000-0000-000000000000"
# Channels whose presence in a checkpoint means a node is scheduled to run next: the start
# input, a fixed or conditional edge to a node, or a ``Send``.
_START = "__start__"
_BRANCH_PREFIX = "branch:to:"
_SENDS = "__pregel_tasks"


class CheckpointNotFoundError(DurableGraphError, LookupError):
    """A thread has no checkpoint with the given id."""

    def __init__(self, thread_id: str, checkpoint_id: str) -> None:
        super().__init__(
            f"thread {thread_id!r} has no checkpoint {checkpoint_id!r} "
            f"(see: durable-graph history {thread_id})"
        )


@dataclass
class ThreadSummary:
    """One thread as ``threads`` lists it: read from its latest checkpoint only."""

    thread_id: str
    status: Status
    checkpoint_id: str
    step: int | None
    """The agent's step (model turns so far), from the state."""
    checkpoint_step: int
    """LangGraph's step number of the latest checkpoint (as in ``history``)."""
    updated: str
    task: str | None
    next: list[str]
    interrupts: list[Any] = field(default_factory=list)
    error: str | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    active: bool | None = None
    """For ``running`` threads: whether a process runs it now (else it crashed: ``resume`` it)."""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["settings"] = asdict(self.settings)
        return data


def describe_error(error: Any) -> str:
    """A one-line description of a recorded node error."""
    if isinstance(error, BaseException):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


def status_of(saved: CheckpointTuple) -> tuple[Status, list[Any], str | None, list[str]]:
    """``(status, pending interrupt values, error, next nodes)`` of a thread's latest checkpoint.

    Read from the checkpoint and its pending writes without the graph: a task has finished iff it
    recorded an output write; an unfinished task's last interrupt is still waiting for an answer;
    a recorded error means the last step failed; a start input, a ``branch:to:<node>`` edge
    channel or a ``Send`` in the checkpoint means nodes are still to run.
    """
    finished: set[str] = set()
    interrupts: dict[str, list[Any]] = {}
    error: Any = None
    for task_id, channel, value in saved.pending_writes or []:
        if task_id == _NULL_TASK:
            continue
        if channel == _INTERRUPT:
            interrupts[task_id] = list(value) if isinstance(value, list | tuple) else [value]
        elif channel == _ERROR:
            error = error if error is not None else value
        elif channel not in _CONTROL:
            finished.add(task_id)
    pending = [
        getattr(i, "value", i) for tid, items in interrupts.items() if tid not in finished for i in items
    ]
    values = saved.checkpoint.get("channel_values") or {}
    nxt = sorted(
        c[len(_BRANCH_PREFIX) :] if c.startswith(_BRANCH_PREFIX) else c
        for c in values
        if c.startswith(_BRANCH_PREFIX) or c in (_START, _SENDS)
    )
    if error is not None:
        return "failed", pending, describe_error(error), nxt
    if pending:
        return "interrupted", pending, None, nxt
    return ("running" if nxt else "done"), [], None, nxt


def summarize(saved: CheckpointTuple) -> ThreadSummary:
    """The summary of a thread from its latest checkpoint."""
    status, pending, error, nxt = status_of(saved)
    values = saved.checkpoint.get("channel_values") or {}
    task, step = values.get("task"), values.get("step")
    return ThreadSummary(
        thread_id=str(saved.config["configurable"]["thread_id"]),
        status=status,
        checkpoint_id=saved.checkpoint["id"],
        step=step if isinstance(step, int) else None,
        checkpoint_step=int((saved.metadata or {}).get("step", -1)),
        updated=saved.checkpoint.get("ts", ""),
        task=task if isinstance(task, str) else None,
        next=nxt,
        interrupts=pending,
        error=error,
        settings=RunSettings.from_metadata(saved.metadata),
    )


def latest_checkpoints(saver: BaseCheckpointSaver) -> list[CheckpointTuple]:
    """The latest root-namespace checkpoint of every thread, most recently updated first.

    One pass over ``saver.list(None)``; only the newest checkpoint of each thread is kept in memory
    (checkpoint ids are monotonic, so the greatest id is the latest).
    """
    latest: dict[str, CheckpointTuple] = {}
    for saved in saver.list(None):
        conf = saved.config["configurable"]
        if conf.get("checkpoint_ns", ""):
            continue
        thread_id = str(conf["thread_id"])
        current = latest.get(thread_id)
        if current is None or saved.checkpoint["id"] > current.checkpoint["id"]:
            latest[thread_id] = saved
    return sorted(latest.values(), key=lambda s: s.checkpoint["id"], reverse=True)


def list_threads(saver: BaseCheckpointSaver) -> list[ThreadSummary]:
    """Every thread with its status, most recently updated first."""
    return [summarize(saved) for saved in latest_checkpoints(saver)]


def latest(saver: BaseCheckpointSaver, thread_id: str) -> CheckpointTuple:
    """The latest checkpoint of a thread, or ``ThreadNotFoundError``."""
    saved = saver.get_tuple(thread_config(thread_id))
    if saved is None:
        raise ThreadNotFoundError(thread_id)
    return saved


def saved_settings(saver: BaseCheckpointSaver, thread_id: str) -> RunSettings:
    """The run settings stored with a thread's latest checkpoint, or ``ThreadNotFoundError``."""
    return RunSettings.from_metadata(latest(saver, thread_id).metadata)


def thread_chain(saver: BaseCheckpointSaver, thread_id: str, checkpoint_id: str) -> list[CheckpointTuple]:
    """Checkpoint ``checkpoint_id`` of a thread and its ancestors, oldest first."""
    by_id = {
        saved.checkpoint["id"]: saved
        for saved in saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    }
    if checkpoint_id not in by_id:
        raise CheckpointNotFoundError(thread_id, checkpoint_id)
    chain: list[CheckpointTuple] = []
    current: str | None = checkpoint_id
    while current is not None and current in by_id:
        saved = by_id[current]
        chain.append(saved)
        parent = saved.parent_config
        current = parent["configurable"].get("checkpoint_id") if parent else None
    chain.reverse()
    return chain


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` or ``"45s"`` as a ``timedelta``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r}; use a number and a unit, like 30m, 12h, 7d or 2w")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit.lower()]: int(amount)})


def older_than(summaries: Iterable[ThreadSummary], age: timedelta, now: datetime | None = None) -> list[str]:
    """Ids of the threads whose latest checkpoint is older than ``age``."""
    cutoff = (now or datetime.now(UTC)) - age
    old = []
    for summary in summaries:
        try:
            updated = datetime.fromisoformat(summary.updated)
        except ValueError:
            continue
        if updated.tzinfo is None:
            updated = updated.replace(tzinfo=UTC)
        if updated < cutoff:
            old.append(summary.thread_id)
    return old
