"""Answer or continue a thread wherever it runs: the one way every front end does it.

A thread's runner is chosen when the thread is started (``start_thread``, the CLI's ``run`` with or
without ``--temporal``) and recorded (``durable_graph.runs.placement``). From then on
``continue_thread`` answers (``decision``) or continues (None) it there, whoever calls it and from
wherever: the CLI's ``approve``/``edit``/``reject``/``resume``, the web inbox, the Agent Server entry
points, your program.

- Here (``LOCAL``): the thread runs in the calling process, holding its lease.
- On Temporal: the decision goes to the workflow that waits for it, and the call follows the run
  until the graph ends or waits again. If no run of the thread is going (it failed, was cancelled,
  or the server forgot it), a new one is started on the same server and task queue.

Passing ``runner`` moves the thread: ``LOCAL`` takes it back from Temporal (its workflow is
cancelled first, so none is left running or failed), a ``TemporalRunner`` moves it to that server.
If the thread's Temporal server does not answer, ``TemporalUnavailableError`` names it; nothing runs
here instead.

Both functions block; in async code call them in a thread (``asyncio.to_thread``). Progress is
reported to ``on_event``, in the calling thread, with the same ``NodeEvent``s a local run yields
(for a run on Temporal, read back from the checkpoints its workers write, a fraction of a second
after each node), ending with an ``__interrupt__`` event if the thread then waits for an answer.
They return the thread's ``Outcome`` and raise what a local run raises: ``ThreadNotFoundError``,
``ThreadStateError`` (nothing to answer, or nothing to continue), ``InvalidResumeError`` (a decision
the tool refuses; the thread keeps waiting), ``ThreadBusyError``, ``GraphRecursionError``; on
Temporal also ``TemporalUnavailableError``, ``TemporalRunError`` (the run failed for a reason
other than a node's error: a node's error gives status "failed", as here) and
``ThreadAdvancedElsewhereError`` (a runner that ignores the record had moved the thread on: the stale
run has ended without using the decision; answering again reaches the thread as it stands).
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import asdict
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import TemporalRunError, TemporalUnavailableError, ThreadAdvancedElsewhereError
from durable_graph.runs.agent import AGENT_FACTORY, build_graph, open_graph
from durable_graph.runs.lease import lease
from durable_graph.runs.placement import LOCAL, Runner, TemporalRunner, record_runner, runner_of
from durable_graph.runs.runner import (
    INTERRUPT_KEY,
    AlreadyAnsweredError,
    NodeEvent,
    OnEvent,
    Outcome,
    approval_command,
    check_can_resume,
    check_can_start,
    events_since,
    outcome,
    pending_approval,
    run_here,
)
from durable_graph.runs.settings import RunSettings
from durable_graph.runs.status import latest, saved_settings

__all__ = ["LOCAL", "TemporalRunner", "continue_thread", "start_thread"]


def start_thread(
    url: str,
    thread_id: str,
    value: Any,
    settings: RunSettings,
    *,
    runner: Runner = LOCAL,
    on_event: OnEvent | None = None,
    wait: bool = False,
) -> Outcome:
    """Start a new task (input ``value``) on a new or finished thread, on ``runner``, and record it.

    ``wait``: if another process runs the thread here, wait for it instead of ``ThreadBusyError``.
    """
    with ExitStack() as stack:
        saver = stack.enter_context(open_checkpointer(url))
        if isinstance(runner, TemporalRunner):
            since = _latest_id(check_can_start(saver, thread_id))
            return _on_temporal(url, saver, thread_id, settings, runner, on_event, since, start_with=value)
        stack.enter_context(lease(url, thread_id, wait=wait))
        if check_can_start(saver, thread_id) is not None:
            record_runner(url, thread_id, LOCAL)  # a finished thread starts again here
        return run_here(open_graph(stack, url, saver, settings), value, thread_id, settings, on_event)


def continue_thread(
    url: str,
    thread_id: str,
    decision: Command | None = None,
    *,
    on_event: OnEvent | None = None,
    runner: Runner | None = None,
    wait: bool = False,
    interrupt_id: str | None = None,
) -> Outcome:
    """Answer the thread's pending approval with ``decision`` (``approve()``, ``edit(args)``,
    ``reject(reason)`` from ``durable_graph.graphs``), or continue it (None: a thread whose runner
    died or whose last node failed), wherever it runs; see the module's docstring.

    ``runner``: move the thread there first (``LOCAL``, or a ``TemporalRunner``); None keeps it
    where it is. ``wait``: if another process runs the thread here, wait for it instead of
    ``ThreadBusyError``. ``interrupt_id``: the approval the decision was made for (as a person saw
    it); a thread that waits for another one by now raises ``AlreadyAnsweredError``.
    """
    with ExitStack() as stack:
        saver = stack.enter_context(open_checkpointer(url))
        settings = _check_can_continue(saver, thread_id, decision, interrupt_id)
        current = runner_of(url, thread_id)
        target = current if runner is None else runner
        if isinstance(current, TemporalRunner) and target != current:
            _end_temporal_run(current, thread_id)
            record_runner(url, thread_id, LOCAL)
        if isinstance(target, TemporalRunner):
            since = _latest_id(latest(saver, thread_id))
            return _on_temporal(url, saver, thread_id, settings, target, on_event, since, answer=decision)
        stack.enter_context(lease(url, thread_id, wait=wait))
        # Read again under the lease: another process may have moved the thread meanwhile.
        settings = _check_can_continue(saver, thread_id, decision)
        graph = open_graph(stack, url, saver, settings)
        value = None
        if decision is not None:
            value = approval_command(graph, thread_id, decision, settings, interrupt_id=interrupt_id)
        return run_here(graph, value, thread_id, settings, on_event)


def _check_can_continue(
    saver: BaseCheckpointSaver, thread_id: str, decision: Command | None, interrupt_id: str | None = None
) -> RunSettings:
    """The thread's settings, once it is known to wait for an answer (the one ``interrupt_id`` names,
    if given) or, without one, to have something left to continue."""
    if decision is None:
        return RunSettings.from_metadata(check_can_resume(saver, thread_id).metadata)
    settings = saved_settings(saver, thread_id)
    pending_id, _ = pending_approval(_inspector(saver, settings), thread_id)
    if interrupt_id is not None and interrupt_id != pending_id:
        raise AlreadyAnsweredError(thread_id)
    return settings


def _inspector(saver: BaseCheckpointSaver, settings: RunSettings) -> Pregel:
    return build_graph(settings, saver, inspect_only=True)


def _latest_id(saved: Any) -> str | None:
    return None if saved is None else saved.checkpoint["id"]


# -- on Temporal -------------------------------------------------------------------------------


def _unreachable(runner: TemporalRunner, thread_id: str, exc: TemporalUnavailableError) -> Exception:
    return TemporalUnavailableError(f"thread {thread_id!r} runs {runner.describe()}: {exc}")


def _end_temporal_run(runner: TemporalRunner, thread_id: str) -> None:
    """Cancel the thread's Temporal run, if one is going, before the thread moves elsewhere."""
    from durable_graph.temporal.client import cancel_run_async, connect

    async def end() -> None:
        client = await connect(runner.address, namespace=runner.namespace)
        await cancel_run_async(client, thread_id, reason="the thread was moved to another runner")

    try:
        asyncio.run(end())
    except TemporalUnavailableError as exc:
        raise _unreachable(runner, thread_id, exc) from exc


class _Follower:
    """Reports the nodes a Temporal run finishes as ``NodeEvent``s, read back from the checkpoints."""

    def __init__(self, graph: Pregel, thread_id: str, since: str | None, on_event: OnEvent | None) -> None:
        self.graph, self.thread_id, self.since, self.on_event = graph, thread_id, since, on_event

    def catch_up(self) -> None:
        events, self.since = events_since(self.graph, self.thread_id, self.since)
        for event in events:
            if self.on_event is not None:
                self.on_event(event)

    async def progress(self, _status: Any) -> None:
        self.catch_up()


def _on_temporal(
    url: str,
    saver: BaseCheckpointSaver,
    thread_id: str,
    settings: RunSettings,
    runner: TemporalRunner,
    on_event: OnEvent | None,
    since: str | None,
    *,
    start_with: Any = None,
    answer: Command | None = None,
) -> Outcome:
    """Start (``start_with``), answer (``answer``) or continue the thread on ``runner`` and follow the
    run until the graph ends or waits; returns where the thread stands."""
    from durable_graph.temporal.client import (
        connect,
        send_resume_async,
        start_run_async,
        wait_run_async,
    )
    from durable_graph.temporal.client import run_status_async as status_async

    graph = _inspector(saver, settings)
    follower = _Follower(graph, thread_id, since, on_event)

    async def start(client: Any, value: Any) -> Any:
        return await start_run_async(
            client,
            thread_id=thread_id,
            graph=AGENT_FACTORY,
            graph_kwargs=asdict(settings),
            metadata=settings.to_metadata(),
            input=value,
            url=url,
            task_queue=runner.task_queue,
            on_progress=follower.progress,
        )

    async def going(client: Any) -> Any:
        """The thread's run once it is waiting or has ended; a new one if none is going."""
        try:
            status = await status_async(client, thread_id)
        except TemporalRunError:  # none ever, or it failed, was cancelled or terminated
            status = None
        if status is None or status.status in ("done", "advanced_elsewhere"):
            return await start(client, None)
        if status.status == "running":
            return await wait_run_async(client, thread_id, on_progress=follower.progress)
        return status

    async def drive() -> None:
        try:
            client = await connect(runner.address, namespace=runner.namespace)
        except TemporalUnavailableError as exc:
            raise _unreachable(runner, thread_id, exc) from exc
        if start_with is not None:
            await start(client, start_with)
            return
        status = await going(client)
        if answer is None:
            return
        if status.status != "waiting":
            raise TemporalRunError(f"the Temporal run of thread {thread_id!r} does not wait for an answer")
        try:
            await send_resume_async(client, thread_id, answer, wait=True, on_progress=follower.progress)
        except ThreadAdvancedElsewhereError as exc:  # a runner that ignores the placement moved it
            raise ThreadAdvancedElsewhereError(f"{exc}; answer again to answer it as it stands now") from exc

    try:
        asyncio.run(drive())
    except TemporalRunError:
        follower.catch_up()
        result = outcome(graph, thread_id)
        if result.status != "failed":
            raise
        return result
    follower.catch_up()
    result = outcome(graph, thread_id)
    if result.status == "interrupted" and on_event is not None:
        on_event(NodeEvent(INTERRUPT_KEY, interrupts=result.interrupts))
    return result
