"""Running a thread here and answering its approvals, for every front end (CLI, web inbox, servers).

Every function takes an open checkpointer or a compiled graph and returns plain data or an iterator
of events; none prints. ``durable_graph.runs.answers`` decides where a thread runs (here or on
Temporal) and uses these to run it here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.pregel import Pregel
from langgraph.types import Command, StateSnapshot

from durable_graph.errors import DurableGraphError, InvalidResumeError, ThreadNotFoundError
from durable_graph.runs.agent import load_tools, open_graph
from durable_graph.runs.lease import lease
from durable_graph.runs.settings import RunSettings, thread_config
from durable_graph.runs.status import Status, describe_error, latest, saved_settings, status_of

INTERRUPT_KEY = "__interrupt__"
_START = "__start__"


class ThreadStateError(DurableGraphError):
    """The thread is not in a state that allows what was asked (e.g. resuming a finished thread)."""

    def __init__(self, message: str, status: Status) -> None:
        super().__init__(message)
        self.status = status


class AlreadyAnsweredError(ThreadStateError):
    """The approval a decision was meant for has been answered already; the thread waits for another."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"the approval of thread {thread_id!r} was already decided; it now waits for another one",
            "interrupted",
        )


@dataclass
class NodeEvent:
    """A node finished (``node`` and the state ``update`` it wrote) or the run paused (``interrupts``)."""

    node: str
    update: Any = None
    interrupts: list[Any] = field(default_factory=list)


OnEvent = Callable[[NodeEvent], None]
"""Called with each ``NodeEvent`` of a run, as it happens."""


def run_config(thread_id: str, settings: RunSettings) -> RunnableConfig:
    """The config that runs a thread of the bundled agent: its settings saved with each checkpoint."""
    config = thread_config(thread_id, settings)
    # each agent step runs up to a handful of nodes; the graph itself stops at max_steps
    config["recursion_limit"] = max(25, settings.max_steps * 6 + 10)
    return config


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
    graph: Pregel,
    thread_id: str,
    decision: Command,
    settings: RunSettings,
    *,
    interrupt_id: str | None = None,
) -> Command:
    """Check ``decision`` against the pending approval (edited args must fit the tool's schema) and
    address it to the pending interrupt by id.

    With ``interrupt_id`` (the approval the person saw), a thread that waits for another approval by
    now raises ``AlreadyAnsweredError``: that one was answered, and this decision is not for the new one.
    """
    from durable_graph.graphs import parse_decision

    pending_id, payload = pending_approval(graph, thread_id)
    if interrupt_id is not None and interrupt_id != pending_id:
        raise AlreadyAnsweredError(thread_id)
    tools = {t.name: t for t in load_tools(settings.tools, settings.workdir)}
    parse_decision(decision.resume, tools.get(str(payload.get("tool"))))
    return Command(resume={pending_id: decision.resume})


def prepare_answer(
    stack: ExitStack,
    url: str,
    saver: BaseCheckpointSaver,
    thread_id: str,
    decision: Command,
    *,
    wait: bool = False,
    interrupt_id: str | None = None,
) -> tuple[Pregel, Command, RunSettings]:
    """Take the thread's lease (held until ``stack`` closes), rebuild its graph and check ``decision``
    (``approval_command``): ``(graph, command to run it with, settings)``. Nothing is stored."""
    stack.enter_context(lease(url, thread_id, wait=wait))
    settings = saved_settings(saver, thread_id)
    graph = open_graph(stack, url, saver, settings)
    return graph, approval_command(graph, thread_id, decision, settings, interrupt_id=interrupt_id), settings


def parse_args_json(text: str, name: str = "--args") -> dict[str, Any]:
    """Edited tool arguments (``edit --args``, the inbox's edit form): a JSON object, or
    ``InvalidResumeError`` saying what is wrong; ``name`` is what the message calls the text."""
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidResumeError(
            f"{name} is not valid JSON ({exc.msg} at character {exc.pos}): {text!r}"
        ) from None
    if not isinstance(args, dict):
        raise InvalidResumeError(
            f'{name} must be a JSON object of the tool\'s arguments, like \'{{"title": "..."}}\'; '
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
