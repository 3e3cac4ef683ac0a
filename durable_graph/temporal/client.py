"""Start runs on Temporal, resume them, ask how they stand: the functions behind the CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.types import Command
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import (
    InvalidResumeError,
    InvalidURLError,
    TemporalRunError,
    TemporalUnavailableError,
    ThreadAdvancedElsewhereError,
    WorkflowRunningError,
)
from durable_graph.runs.placement import TemporalRunner, record_runner
from durable_graph.temporal import graphspec, payload
from durable_graph.temporal.activities import redact
from durable_graph.temporal.models import (
    DEFAULT_TASK_QUEUE,
    WORKFLOW_NAME,
    GraphSpec,
    PendingInterrupt,
    RunRequest,
    RunResult,
    StepResult,
    workflow_id_for,
)
from durable_graph.urls import BackendURL, default_url, parse_url

# A query waits for a worker; without one it times out (the run itself goes on when one comes).
_NO_ANSWER_YET = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE)

CANCEL_WAIT = 10.0
"""Seconds ``cancel_run`` waits for a cancelled run to end (a worker must see the request) before it
terminates the run instead."""


@dataclass
class RunStatus:
    """How a thread's Temporal run stands. ``values`` is the final graph state (``start_run`` when done).

    ``status`` "advanced_elsewhere": the run ended without finishing because another runner (a local
    run, another workflow) had advanced the thread; nothing was run twice.
    """

    thread_id: str
    workflow_id: str
    status: Literal["running", "waiting", "done", "advanced_elsewhere"]
    checkpoint_id: str | None = None
    next: list[str] = field(default_factory=list)
    interrupts: list[PendingInterrupt] = field(default_factory=list)
    values: Any = None


OnProgress = Callable[[RunStatus], Awaitable[None]]
"""Called while waiting for a run, each time the run reports a new checkpoint of its thread."""


async def connect(address: str, *, namespace: str = "default") -> Client:
    """A client of the Temporal server at ``address`` (``host:port``)."""
    try:
        return await Client.connect(address, namespace=namespace)
    except RuntimeError as exc:
        raise TemporalUnavailableError(f"no Temporal server answers at {address!r}: {exc}") from exc


def check_url(url: str) -> BackendURL:
    """The backend of a Temporal run, which every worker must reach: a Postgres (``embedded://``
    serves the workers of one machine). ``worker`` and ``start_run`` refuse anything else."""
    backend = parse_url(url)
    if backend.kind not in ("postgres", "embedded"):
        raise InvalidURLError(
            f"Temporal runs need a Postgres URL that every worker reaches (postgresql://..., or "
            f"embedded:// on one machine), not {url!r}"
        )
    return backend


def runner_of_client(client: Client, task_queue: str) -> TemporalRunner:
    """Where runs started with ``client`` on ``task_queue`` run, as a thread records it."""
    return TemporalRunner(client.service_client.config.target_host, client.namespace, task_queue)


async def start_run_async(
    address: str | Client,
    *,
    thread_id: str,
    graph: str,
    graph_kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    input: Any = None,
    url: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
    wait: bool = True,
    namespace: str = "default",
    steps_per_run: int = 1000,
    on_progress: OnProgress | None = None,
) -> RunStatus:
    """Run thread ``thread_id`` of graph ``graph`` (``"package.module:function"``) on Temporal.

    ``input`` None continues the thread from its latest checkpoint (e.g. one a local run saved).
    ``metadata`` is stamped on every checkpoint the run writes, as ``config["metadata"]`` is locally.
    With ``wait`` this returns once the graph ends or waits for a resume value (``send_resume``);
    otherwise at once. Raises ``WorkflowRunningError`` if a run of this thread is already going.
    After ``steps_per_run`` nodes the workflow continues as new, so its history stays bounded.
    Once started, the thread records where it runs (``durable_graph.runs.placement``), so that
    answering it from anywhere reaches this run.
    """
    if not isinstance(thread_id, str) or not thread_id:
        raise ValueError(f"thread_id must be a non-empty string, got {thread_id!r}")
    url = url or default_url()
    check_url(url)
    spec = GraphSpec(graph, dict(graph_kwargs or {}), dict(metadata or {}))
    graphspec.build(spec)  # a bad factory or node metadata fails here, before anything is started
    if not isinstance(steps_per_run, int) or steps_per_run < 1:
        raise ValueError(f"steps_per_run must be a positive integer, got {steps_per_run!r}")
    client = address if isinstance(address, Client) else await connect(address, namespace=namespace)
    workflow_id = workflow_id_for(thread_id)
    encoded = None if input is None else payload.encode(input)
    request = RunRequest(thread_id, spec, redact(url), encoded, steps_per_run)
    try:
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            request,
            id=workflow_id,
            task_queue=task_queue,
            result_type=RunResult,
            # A finished run may be followed by another on the same thread; a running one may not.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError as exc:
        raise WorkflowRunningError(thread_id, workflow_id) from exc
    await asyncio.to_thread(record_runner, url, thread_id, runner_of_client(client, task_queue))
    if not wait:
        return RunStatus(thread_id, workflow_id, "running")
    status = await _wait(handle, thread_id, on_progress)
    if status.status == "done":
        status.values = await _final_values(spec, url, thread_id)
    return status


async def send_resume_async(
    address: str | Client,
    thread_id: str,
    value: Any,
    *,
    wait: bool = False,
    namespace: str = "default",
    on_progress: OnProgress | None = None,
) -> RunStatus:
    """Resume thread ``thread_id``, waiting on ``interrupt()`` in its Temporal run, with ``value``.

    ``value`` may be a ``Command(resume=...)`` (as ``approve()``/``edit()``/``reject()`` return) or the
    resume value itself. Returns once the interrupted node ran again with it; with ``wait``, once the
    graph ends or waits again. Raises ``InvalidResumeError`` if the graph refused the value (the
    thread keeps waiting), ``TemporalRunError`` if no run of the thread waits for one,
    ``ThreadAdvancedElsewhereError`` if the run found the thread advanced by another runner (the run
    then ends, the value is not used).
    """
    if isinstance(value, Command):
        value = value.resume
    client = address if isinstance(address, Client) else await connect(address, namespace=namespace)
    handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
    try:
        await handle.execute_update("resume", payload.encode(value), result_type=list[str])
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise TemporalRunError(f"no Temporal run of thread {thread_id!r} is going ({exc})") from exc
        raise
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == "InvalidResumeError":
            raise InvalidResumeError(f"thread {thread_id!r} refused the value: {cause.message}") from exc
        if isinstance(cause, ApplicationError) and cause.type == "ThreadAdvancedElsewhere":
            raise ThreadAdvancedElsewhereError(f"{cause.message}; its Temporal run has ended") from exc
        raise TemporalRunError(f"thread {thread_id!r} cannot be resumed: {cause}") from exc
    if wait:
        return await _wait(handle, thread_id, on_progress)
    return await run_status_async(client, thread_id)


async def run_status_async(address: str | Client, thread_id: str, *, namespace: str = "default") -> RunStatus:
    """How the latest Temporal run of ``thread_id`` stands ("running" while no worker answers)."""
    client = address if isinstance(address, Client) else await connect(address, namespace=namespace)
    handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise TemporalRunError(f"thread {thread_id!r} was never run on Temporal") from exc
        raise
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return _ended(thread_id, handle.id, await handle.result())
    if description.status != WorkflowExecutionStatus.RUNNING:
        name = description.status.name if description.status else "UNKNOWN"
        raise TemporalRunError(f"the Temporal run of thread {thread_id!r} ended as {name}")
    try:
        state = await handle.query("status", result_type=StepResult)
    except RPCError as exc:
        if exc.status not in _NO_ANSWER_YET:
            raise
        state = None  # no worker answers (none is running): the run is going, where is unknown
    return _status(thread_id, handle.id, state)


async def wait_run_async(
    address: str | Client,
    thread_id: str,
    *,
    namespace: str = "default",
    on_progress: OnProgress | None = None,
) -> RunStatus:
    """Wait until the Temporal run of ``thread_id`` ends or waits for a resume value."""
    client = address if isinstance(address, Client) else await connect(address, namespace=namespace)
    handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
    return await _wait(handle, thread_id, on_progress)


async def cancel_run_async(
    address: str | Client, thread_id: str, *, namespace: str = "default", reason: str = "cancelled"
) -> bool:
    """End the thread's Temporal run, if one is going, and wait until it has ended; returns whether
    one was going. The thread's checkpoints are not touched: continue it anywhere.

    The run is cancelled (a node running on a worker is cancelled too, and its step not saved). If
    no worker acts on the request within ``CANCEL_WAIT`` seconds (none is running), the run is
    terminated instead, with ``reason``.
    """
    client = address if isinstance(address, Client) else await connect(address, namespace=namespace)
    handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    await handle.cancel()
    try:
        with suppress(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), CANCEL_WAIT)
    except TimeoutError:
        with suppress(RPCError):  # it may have ended meanwhile
            await handle.terminate(reason=reason)
    return True


def _status(thread_id: str, workflow_id: str, state: StepResult | None) -> RunStatus:
    if state is None:
        return RunStatus(thread_id, workflow_id, "running")
    return RunStatus(thread_id, workflow_id, state.status, state.checkpoint_id, state.next, state.interrupts)


def _ended(thread_id: str, workflow_id: str, result: RunResult) -> RunStatus:
    return RunStatus(thread_id, workflow_id, result.ended, result.checkpoint_id)


async def _wait(
    handle: WorkflowHandle[Any, RunResult],
    thread_id: str,
    on_progress: OnProgress | None = None,
    poll: float = 0.2,
) -> RunStatus:
    """Wait until the run ends (its result) or waits for a resume value (seen by polling its status)."""
    result = asyncio.ensure_future(handle.result())
    reported: str | None = None
    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=poll)
            if done:
                try:
                    final = result.result()
                except WorkflowFailureError as exc:
                    message = f"the Temporal run of thread {thread_id!r} failed: {_cause(exc)}"
                    raise TemporalRunError(message) from exc
                return _ended(thread_id, handle.id, final)
            try:
                state = await handle.query("status", result_type=StepResult)
            except RPCError as exc:
                if exc.status not in _NO_ANSWER_YET:
                    raise
                continue  # no worker answered the query (none is running yet): keep waiting
            if state is None or state.advanced_elsewhere:
                continue  # starting, or about to end
            if on_progress is not None and state.checkpoint_id != reported:
                reported = state.checkpoint_id
                await on_progress(_status(thread_id, handle.id, state))
            if state.status == "waiting":
                return _status(thread_id, handle.id, state)
    finally:
        result.cancel()


def _cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)


async def _final_values(spec: GraphSpec, url: str, thread_id: str) -> Any:
    async with open_checkpointer(url) as saver:
        graph = graphspec.build(spec).compile(checkpointer=saver)
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        return snapshot.values


def start_run(address: str, **kwargs: Any) -> RunStatus:
    """Blocking form of ``start_run_async`` (same keyword arguments)."""
    return asyncio.run(start_run_async(address, **kwargs))


def send_resume(address: str, thread_id: str, value: Any, **kwargs: Any) -> RunStatus:
    """Blocking form of ``send_resume_async``."""
    return asyncio.run(send_resume_async(address, thread_id, value, **kwargs))


def wait_run(address: str, thread_id: str, **kwargs: Any) -> RunStatus:
    """Blocking form of ``wait_run_async``."""
    return asyncio.run(wait_run_async(address, thread_id, **kwargs))


def run_status(address: str, thread_id: str, **kwargs: Any) -> RunStatus:
    """Blocking form of ``run_status_async``."""
    return asyncio.run(run_status_async(address, thread_id, **kwargs))


def cancel_run(address: str, thread_id: str, **kwargs: Any) -> bool:
    """Blocking form of ``cancel_run_async``."""
    return asyncio.run(cancel_run_async(address, thread_id, **kwargs))
