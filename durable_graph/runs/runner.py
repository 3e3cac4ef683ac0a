"""Running a thread here and answering its approvals, for every front end (CLI, web inbox, servers).

Every function takes an open checkpointer or a compiled graph and returns plain data or an iterator
of events; none prints. ``durable_graph.runs.answers`` decides where a thread runs (here or on
Temporal) and uses these to run it here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.pregel import Pregel
from langgraph.types import Command, StateSnapshot

from durable_graph.errors import DurableGraphError, InvalidResumeError, ThreadNotFoundError
from durable_graph.runs.agent import build_graph, load_tools
from durable_graph.runs.settings import RunSettings, thread_config
from durable_graph.runs.status import Status, describe_error, latest, status_of

INTERRUPT_KEY = "__interrupt__"
_START = "__start__"

LEASE_WAIT = 3.0
"""Seconds a run waits for another process to let go of a thread before giving up (``ThreadBusyError``)."""


class ThreadStateError(DurableGraphError):
    """The thread is not in a state that allows what was asked (e.g. resuming a finished thread)."""

    def __init__(self, message: str, status: Status) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class NodeEvent:
    """A node finished (``node`` and the state ``update`` it wrote) or the run paused (``interrupts``)."""

    node: str
    update: Any = None
    interrupts: list[Any] = field(default_factory=list)


OnEvent = Callable[[NodeEvent], None]
"""Called with each ``NodeEvent`` of a run, as it happens."""


def stream(graph: Pregel, value: Any, config: RunnableConfig) -> Iterator[NodeEvent]:
    """Run the graph from ``value`` (an input, a ``Command`` or None to continue), one event per node.

    Durability is "sync": each checkpoint is stored before the next node starts, so a process killed
    in a node never loses the nodes finished before it.
    """
    for chunk in graph.stream(value, config, stream_mode="updates", durability="sync"):
        if not isinstance(chunk, dict):
            continue
        for node, update in chunk.items():
            if node == INTERRUPT_KEY:
                yield NodeEvent(node, interrupts=[getattr(i, "value", i) for i in update])
            else:
                yield NodeEvent(node, update)


@dataclass
class Outcome:
    """Where a thread stands after a run: its status, state values, pending interrupts, error."""

    thread_id: str
    status: Status
    values: dict[str, Any]
    next: list[str]
    interrupts: list[Any]
    interrupt_ids: list[str]
    error: str | None
    failed_node: str | None
    step: int
    checkpoint_id: str | None


def outcome(graph: Pregel, thread_id: str) -> Outcome:
    """The thread's current state read through the graph (exact next nodes and interrupts)."""
    snapshot = graph.get_state(thread_config(thread_id))
    if snapshot.metadata is None:
        raise ThreadNotFoundError(thread_id)
    return outcome_of(thread_id, snapshot)


def outcome_of(thread_id: str, snapshot: StateSnapshot) -> Outcome:
    error, failed_node = None, None
    for task in snapshot.tasks:
        if task.error is not None:
            error, failed_node = describe_error(task.error), task.name
            break
    interrupts = list(snapshot.interrupts)
    next_nodes = list(snapshot.next)
    status: Status
    if error is not None:
        status = "failed"
    elif interrupts:
        status = "interrupted"
    elif next_nodes or snapshot.tasks:
        # tasks but no next nodes: the last tasks finished but their step was not checkpointed
        status = "running"
    else:
        status = "done"
    metadata = snapshot.metadata or {}
    values = snapshot.values if isinstance(snapshot.values, dict) else {"value": snapshot.values}
    return Outcome(
        thread_id=thread_id,
        status=status,
        values=values,
        next=next_nodes,
        interrupts=[i.value for i in interrupts],
        interrupt_ids=[i.id for i in interrupts],
        error=error,
        failed_node=failed_node,
        step=int(metadata.get("step", -1)),
        checkpoint_id=snapshot.config["configurable"].get("checkpoint_id"),
    )


def check_can_start(saver: BaseCheckpointSaver, thread_id: str) -> CheckpointTuple | None:
    """A new task may start on a thread that does not exist yet or is done; returns its latest
    checkpoint (None for a new thread)."""
    saved = saver.get_tuple(thread_config(thread_id))
    if saved is None:
        return None
    status = status_of(saved)[0]
    if status == "done":
        return saved
    hints = {
        "interrupted": f"answer its approval with: durable-graph approve|edit|reject {thread_id}",
        "running": f"continue it with: durable-graph resume {thread_id}",
        "failed": f"retry it with: durable-graph resume {thread_id}",
    }
    raise ThreadStateError(f"thread {thread_id!r} already exists and is {status}; {hints[status]}", status)


def check_can_resume(saver: BaseCheckpointSaver, thread_id: str) -> CheckpointTuple:
    """``resume`` continues a thread that is running (e.g. its process was killed) or failed."""
    saved = latest(saver, thread_id)
    status = status_of(saved)[0]
    if status == "interrupted":
        raise ThreadStateError(
            f"thread {thread_id!r} is waiting for approval, not crashed; answer it with "
            f"durable-graph approve {thread_id}, durable-graph edit {thread_id} --args JSON "
            f"or durable-graph reject {thread_id} --reason TEXT",
            status,
        )
    if status == "done":
        raise ThreadStateError(
            f"thread {thread_id!r} is already done; nothing to resume (see: durable-graph show {thread_id})",
            status,
        )
    return saved


def pending_approval(graph: Pregel, thread_id: str) -> tuple[str, dict[str, Any]]:
    """``(interrupt id, approval payload)`` the thread waits for, or ``ThreadStateError``."""
    state = outcome(graph, thread_id)
    for interrupt_id, value in zip(state.interrupt_ids, state.interrupts, strict=True):
        if isinstance(value, dict) and value.get("type") == "approval":
            return interrupt_id, value
    raise ThreadStateError(
        f"thread {thread_id!r} is {state.status} and has no pending approval to answer"
        + (
            f"; continue it with: durable-graph resume {thread_id}"
            if state.status in ("running", "failed")
            else ""
        ),
        state.status,
    )


def approval_command(
    graph: Pregel, thread_id: str, decision: Command, tool_name: str, settings: RunSettings
) -> Command:
    """Check ``decision`` against the pending tool (edited args must fit its schema) and address it
    to the pending interrupt by id."""
    from durable_graph.graphs import parse_decision

    tools = {t.name: t for t in load_tools(settings.tools, settings.workdir)}
    parse_decision(decision.resume, tools.get(tool_name))
    interrupt_id, _ = pending_approval(graph, thread_id)
    return Command(resume={interrupt_id: decision.resume})


def parse_args_json(text: str) -> dict[str, Any]:
    """The ``--args`` of ``edit``: a JSON object, or ``InvalidResumeError`` saying what is wrong."""
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidResumeError(
            f"--args is not valid JSON ({exc.msg} at character {exc.pos}): {text!r}"
        ) from None
    if not isinstance(args, dict):
        raise InvalidResumeError(
            f'--args must be a JSON object of the tool\'s arguments, like \'{{"title": "..."}}\'; '
            f"got a {type(args).__name__}: {text!r}"
        )
    return args


def events_since(graph: Pregel, thread_id: str, since: str | None) -> tuple[list[NodeEvent], str | None]:
    """The nodes another runner (a Temporal worker) finished since checkpoint ``since`` was the
    thread's latest, as the ``NodeEvent``s a local ``stream`` yields for them, oldest first; and the
    thread's latest checkpoint id now. ``since`` None: from the thread's first checkpoint.

    A node's update is read back from the writes recorded on the checkpoint it ran from, so only the
    nodes of checkpoints before the latest one are finished (the latest one's are still to run).
    """
    snapshots: list[StateSnapshot] = []
    for snapshot in graph.get_state_history(thread_config(thread_id)):
        snapshots.append(snapshot)
        if _checkpoint_id(snapshot) == since:
            break
    if not snapshots:
        return [], since
    snapshots.reverse()
    events = [
        NodeEvent(task.name, task.result)
        for snapshot in snapshots[:-1]
        for task in snapshot.tasks
        if task.result is not None and task.name != _START
    ]
    return events, _checkpoint_id(snapshots[-1])


def _checkpoint_id(snapshot: StateSnapshot) -> str | None:
    return snapshot.config["configurable"].get("checkpoint_id")


# -- running a thread in this process ------------------------------------------------------------


@contextmanager
def lease(url: str, thread_id: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the thread's lease while running it here, so two runners never run one thread at once.

    Without ``wait`` a busy thread is given up after ``LEASE_WAIT`` seconds (which lets a ``threads``
    listing that is probing the lease finish first); with it, the run waits as long as it takes."""
    from durable_graph.leases import thread_lease

    with thread_lease(url, thread_id, wait=True, timeout=None if wait else LEASE_WAIT):
        yield


def local_graph(stack: ExitStack, url: str, saver: BaseCheckpointSaver, settings: RunSettings) -> Pregel:
    """The thread's agent graph; with ``memory`` on, the long-term memory store at the same URL is
    opened on ``stack``."""
    store = None
    if settings.memory:
        from durable_graph.memory import open_store

        store = stack.enter_context(open_store(url))
    return build_graph(settings, saver, store=store)


def run_config(thread_id: str, settings: RunSettings) -> RunnableConfig:
    """The config of a run of the agent: its settings saved with every checkpoint, and a recursion
    limit that lets ``max_steps`` be the one that stops it."""
    config = thread_config(thread_id, settings)
    # each agent step runs up to a handful of nodes; the graph itself stops at max_steps
    config["recursion_limit"] = max(25, settings.max_steps * 6 + 10)
    return config


def run_here(
    graph: Pregel, value: Any, thread_id: str, settings: RunSettings, on_event: OnEvent | None = None
) -> Outcome:
    """Run the thread in this process from ``value`` (input, ``Command`` or None), reporting each node
    to ``on_event``; returns where it stands. A node that raised is recorded with the checkpoint and
    gives status "failed"; other errors (``GraphRecursionError`` among them) propagate."""
    try:
        for event in stream(graph, value, run_config(thread_id, settings)):
            if on_event is not None:
                on_event(event)
    except Exception:
        result = outcome(graph, thread_id)
        if result.status != "failed":
            raise
        return result
    return outcome(graph, thread_id)
