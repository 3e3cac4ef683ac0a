"""Building a thread's graph from its saved run settings, running it, answering approvals, forking.

Kept apart from the typer commands so other front ends (e.g. a Temporal worker command) can reuse
it: every function takes an open checkpointer and returns plain data or an iterator of events.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.pregel import Pregel
from langgraph.types import Command, StateSnapshot

from durable_graph.cli_threads import RunSettings, Status, describe_error, status_of, thread_chain
from durable_graph.errors import DurableGraphError, InvalidResumeError, ThreadNotFoundError

INTERRUPT_KEY = "__interrupt__"


class ToolsSpecError(DurableGraphError, ValueError):
    """A ``--tools module:function`` spec could not be loaded."""


class WorkdirMissingError(DurableGraphError, FileNotFoundError):
    """The workdir saved with a thread does not exist where the thread is being continued."""


class ThreadExistsError(DurableGraphError, ValueError):
    """A new thread id was asked for, but a thread with that id already exists."""


class ThreadStateError(DurableGraphError):
    """The thread is not in a state that allows what was asked (e.g. resuming a finished thread)."""

    def __init__(self, message: str, status: Status) -> None:
        super().__init__(message)
        self.status = status


def new_thread_id() -> str:
    """A fresh, short, unique thread id."""
    return uuid.uuid4().hex[:12]


def thread_config(thread_id: str, settings: RunSettings | None = None) -> RunnableConfig:
    """The config that runs ``thread_id``; with ``settings`` they are saved in every checkpoint."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    if settings is not None:
        config["metadata"] = settings.to_metadata()
    return config


def latest(saver: BaseCheckpointSaver, thread_id: str) -> CheckpointTuple:
    """The latest checkpoint of a thread, or ``ThreadNotFoundError``."""
    saved = saver.get_tuple(thread_config(thread_id))
    if saved is None:
        raise ThreadNotFoundError(thread_id)
    return saved


def saved_settings(saver: BaseCheckpointSaver, thread_id: str) -> RunSettings:
    """The run settings stored with a thread's latest checkpoint, or ``ThreadNotFoundError``."""
    return RunSettings.from_metadata(latest(saver, thread_id).metadata)


def load_tools(spec: str | None, workdir: str) -> list[BaseTool]:
    """The agent's tools, made durable: the demo tools, or those ``module:function`` returns for ``workdir``.

    Durable tools record their results next to the checkpoints, so a node re-run after a crash gets a
    finished call's result back instead of calling the tool again (see ``durable_graph.durable_tools``).
    """
    from durable_graph.durable_tools import durable

    return [durable(t) for t in _plain_tools(spec, workdir)]


def _plain_tools(spec: str | None, workdir: str) -> list[BaseTool]:
    """Like other app loaders, the current directory is importable, so ``mytools:make_tools`` finds
    ``./mytools.py``."""
    if spec is None:
        from durable_graph.graphs import demo_tools

        return demo_tools(workdir)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ToolsSpecError(f"--tools {spec!r} is not 'module:function' (e.g. mypkg.tools:make_tools)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ToolsSpecError(f"--tools {spec!r}: cannot import {module_name!r}: {exc}") from exc
    except AttributeError:
        raise ToolsSpecError(f"--tools {spec!r}: module {module_name!r} has no {attr!r}") from None
    tools = list(factory(workdir))
    if not all(isinstance(t, BaseTool) for t in tools):
        raise ToolsSpecError(f"--tools {spec!r} must return a list of langchain BaseTool objects")
    return tools


def build_graph(
    settings: RunSettings, saver: BaseCheckpointSaver, *, store: Any = None, inspect_only: bool = False
) -> Pregel:
    """The compiled agent graph of a thread with these settings.

    ``inspect_only`` builds it with the offline scripted model and the demo tools (the graph's nodes
    and edges depend on neither), for reading state without the real model's package or API key, the
    thread's workdir or its tools module.
    """
    from durable_graph.graphs import build_agent, demo_tools, load_model

    if inspect_only:
        model, tools = load_model(None), demo_tools(".")
        if settings.memory and store is None:
            from langgraph.store.memory import InMemoryStore

            store = InMemoryStore()
    else:
        if not Path(settings.workdir).is_dir():
            raise WorkdirMissingError(
                f"the thread's workdir {settings.workdir!r} is not an existing directory here"
            )
        model = load_model(settings.model, base_url=settings.base_url)
        tools = load_tools(settings.tools, settings.workdir)
    graph = build_agent(model, tools, max_steps=settings.max_steps, store=store if settings.memory else None)
    return graph.compile(checkpointer=saver, store=store if settings.memory else None)


@dataclass
class NodeEvent:
    """A node finished (``node`` and the state ``update`` it wrote) or the run paused (``interrupts``)."""

    node: str
    update: Any = None
    interrupts: list[Any] = field(default_factory=list)


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


# -- checks before running ---------------------------------------------------------------------


def check_can_start(saver: BaseCheckpointSaver, thread_id: str) -> None:
    """A new task may start on a thread that does not exist yet or is done."""
    saved = saver.get_tuple(thread_config(thread_id))
    if saved is None:
        return
    status = status_of(saved)[0]
    if status == "done":
        return
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


# -- fork --------------------------------------------------------------------------------------


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
