"""Carrying out decisions: each answers a thread's approval and continues the run in the background.

``Decisions.decide`` is the one place where the inbox answers a thread, wherever it runs
(``durable_graph.runs.placement``). A thread that runs here: the server takes its lease first and
keeps it until the run stops, so of two people deciding the same thread at once one gets the run
and the other ``ThreadBusyError`` (or, once the first run is over, ``AlreadyAnsweredError`` or a
``ThreadStateError``): never two runs. A thread that runs on Temporal: the decision is checked the
same way, then sent to the workflow that waits for it (``continue_thread``), and its progress is read
back from the checkpoints the workers write. Every check happens before anything is stored: a bad
decision raises and leaves the thread waiting as it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from durable_graph.errors import DurableGraphError, ThreadBusyError
from durable_graph.runs.agent import build_graph
from durable_graph.runs.answers import continue_thread
from durable_graph.runs.describe import describe_update, short
from durable_graph.runs.placement import TemporalRunner, runner_of
from durable_graph.runs.runner import (
    AlreadyAnsweredError,
    NodeEvent,
    ThreadStateError,
    approval_command,
    prepare_answer,
    run_config,
    stream,
)
from durable_graph.runs.settings import RunSettings
from durable_graph.runs.status import describe_error, saved_settings

log = logging.getLogger(__name__)

RunState = Literal["running", "finished", "stopped"]


class ServerStoppingError(DurableGraphError):
    """The server is shutting down and takes no more decisions."""

    def __init__(self) -> None:
        super().__init__("the inbox is shutting down; decide again once it is back")


def refusal(exc: ThreadBusyError | ThreadStateError) -> str:
    """Why a decision was not taken, for the person who sent it."""
    if isinstance(exc, ThreadBusyError):
        return f"Not decided: {exc}. Someone else's decision on it may be running; look again when it stops."
    if isinstance(exc, AlreadyAnsweredError):
        return f"Not decided: {exc}. Look at the new request before deciding again."
    return f"Not decided: {exc}. Someone else may have decided it already."


@dataclass
class DecisionRun:
    """A decision this server carries out, and the nodes its run has finished so far."""

    thread_id: str
    action: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    state: RunState = "running"
    events: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    """What the run raised, if it stopped on an error (a failed node is also recorded in the thread)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "thread": self.thread_id,
            "action": self.action,
            "started": self.started,
            "state": self.state,
            "events": list(self.events),
            "error": self.error,
        }


def event_summary(event: NodeEvent) -> dict[str, str]:
    """A finished node (or the pause for a new approval) as ``{"node", "summary"}``."""
    if event.interrupts:
        asks = [
            f"{i.get('tool')}({short(i.get('args'), 80)})" if isinstance(i, dict) else short(i, 80)
            for i in event.interrupts
        ]
        return {"node": "waiting", "summary": "waits for a decision on " + ", ".join(asks)}
    return {"node": event.node, "summary": describe_update(event.update)}


class Decisions:
    """The decisions of one inbox server, each run in a thread of its own that holds the lease."""

    def __init__(self, url: str, saver: BaseCheckpointSaver) -> None:
        self._url = url
        self._saver = saver
        self._runs: dict[str, DecisionRun] = {}
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def decide(self, thread_id: str, decision: Command, *, interrupt_id: str | None = None) -> DecisionRun:
        """Answer the approval ``thread_id`` waits for with ``decision`` and continue its run here.

        ``interrupt_id`` names the approval the person saw; when the thread waits for another one by
        now, ``AlreadyAnsweredError`` is raised. Raises ``ThreadNotFoundError``, ``ThreadBusyError``,
        ``ThreadStateError`` (nothing to answer) or ``InvalidResumeError`` (a malformed decision or
        edited arguments that do not fit the tool) before storing anything.
        """
        if self._stopping.is_set():
            raise ServerStoppingError()
        if isinstance(runner_of(self._url, thread_id), TemporalRunner):
            return self._decide_on_temporal(thread_id, decision, interrupt_id)
        with ExitStack() as stack:
            graph, command, settings = prepare_answer(
                stack, self._url, self._saver, thread_id, decision, interrupt_id=interrupt_id
            )
            resume: Any = decision.resume  # a dict: approval_command checked it
            run = DecisionRun(thread_id, str(resume.get("action")))
            held = stack.pop_all()  # the lease (and the memory store) now belong to the worker
        return self._start(run, held, lambda: self._carry_out(held, graph, command, settings, run))

    def _decide_on_temporal(self, thread_id: str, decision: Command, interrupt_id: str | None) -> DecisionRun:
        settings = saved_settings(self._saver, thread_id)
        graph = build_graph(settings, self._saver, inspect_only=True)
        approval_command(graph, thread_id, decision, settings, interrupt_id=interrupt_id)  # checks only
        resume: Any = decision.resume
        run = DecisionRun(thread_id, str(resume.get("action")))

        def send() -> None:
            def on_event(event: NodeEvent) -> None:
                run.events.append(event_summary(event))

            try:
                continue_thread(self._url, thread_id, decision, on_event=on_event, interrupt_id=interrupt_id)
            except Exception as exc:
                log.warning("the decision on thread %s failed on Temporal", thread_id, exc_info=True)
                run.error = describe_error(exc)
            run.state = "finished"

        return self._start(run, ExitStack(), send)

    def _start(self, run: DecisionRun, held: ExitStack, work: Callable[[], None]) -> DecisionRun:
        """Carry out ``run`` in a thread of its own, which owns ``held`` (the lease, the store)."""
        worker = threading.Thread(target=work, name=f"decision {run.thread_id}", daemon=True)
        with self._lock:
            if self._stopping.is_set():  # stopped while this decision was checked: nothing was run
                held.close()
                raise ServerStoppingError()
            self._runs[run.thread_id] = run
            self._workers = [w for w in self._workers if w.is_alive()] + [worker]
            worker.start()
        return run

    def _carry_out(
        self, held: ExitStack, graph: Pregel, command: Command, settings: RunSettings, run: DecisionRun
    ) -> None:
        with held:
            try:
                for event in stream(graph, command, run_config(run.thread_id, settings)):
                    run.events.append(event_summary(event))
                    if self._stopping.is_set():
                        run.state = "stopped"  # after a finished node: the thread can be resumed
                        return
            except Exception as exc:  # a failed node is recorded with the thread; say it here too
                log.warning("the run of thread %s stopped on an error", run.thread_id, exc_info=True)
                run.error = describe_error(exc)
            run.state = "finished"

    def latest(self, thread_id: str) -> DecisionRun | None:
        """The last decision on ``thread_id`` this server carried out (or carries out now)."""
        with self._lock:
            return self._runs.get(thread_id)

    def running(self, thread_id: str) -> bool:
        run = self.latest(thread_id)
        return run is not None and run.state == "running"

    def stop_taking(self) -> int:
        """Take no more decisions; running ones stop after the node they are in. Returns how many run."""
        with self._lock:
            self._stopping.set()
            return sum(1 for run in self._runs.values() if run.state == "running")

    def stop(self, timeout: float) -> None:
        """``stop_taking``, then wait for the runs to stop (``timeout`` seconds in all)."""
        self.stop_taking()
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
