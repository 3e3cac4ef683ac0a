"""The activities: each advances a thread by one superstep of its graph, reading and writing checkpoints.

They run ordinary LangGraph code against the worker's checkpointer, so a thread looks exactly the same
whether Temporal or a local ``graph.invoke`` advanced it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from temporalio import activity
from temporalio.exceptions import ApplicationError

from durable_graph.errors import (
    DurableGraphError,
    InvalidGraphError,
    InvalidResumeError,
    ThreadBusyError,
    ThreadConflictError,
    ThreadNotFoundError,
)
from durable_graph.leases import thread_lease
from durable_graph.temporal import graphspec, payload
from durable_graph.temporal.models import (
    PREPARE_ACTIVITY,
    STEP_ACTIVITY,
    GraphSpec,
    NodeOptions,
    PendingInterrupt,
    PrepareRequest,
    StepRequest,
    StepResult,
    ThreadStatus,
)
from durable_graph.temporal.options import merge

# How long a step waits for a thread's lease (held by a local run, or by a worker that just died
# on a machine the database has not yet noticed is gone) before its attempt fails and is retried.
LEASE_WAIT = 90.0
# Checkpoint metadata key naming the activity attempt that wrote a checkpoint.
TOKEN_KEY = "durable_graph_temporal_step"
_DEFAULT_HEARTBEAT_INTERVAL = 10.0


def redact(url: str) -> str:
    """``url`` without its password (in the user info or a ``password=`` parameter): safe to store in
    workflow history."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = userinfo.split(":", 1)[0] + ":***@" + hostinfo
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _fail(error: DurableGraphError) -> ApplicationError:
    """A non-retryable activity failure: retrying cannot fix bad input or a conflict."""
    return ApplicationError(str(error), type=type(error).__name__, non_retryable=True)


@asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while a node runs, so a dead worker is noticed within the node's heartbeat timeout.
    A local activity ("prepare") has no heartbeat: its workflow task's timeout covers it."""
    info = activity.info()
    if info.is_local:
        yield
        return
    timeout = info.heartbeat_timeout
    interval = timeout.total_seconds() / 3 if timeout else _DEFAULT_HEARTBEAT_INTERVAL

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class GraphActivities:
    """The activities of one worker, bound to the checkpointer of the worker's database."""

    def __init__(self, saver: BaseCheckpointSaver, url: str) -> None:
        self._saver = saver
        self._url = url
        self._database = redact(url)
        self._graphs: dict[str, tuple[CompiledStateGraph, dict[str, NodeOptions]]] = {}

    def _graph(self, spec: GraphSpec, database: str) -> tuple[CompiledStateGraph, dict[str, NodeOptions]]:
        if database != self._database:
            raise _fail(
                InvalidGraphError(
                    f"this worker stores threads in {self._database!r} but the run was started "
                    f"for {database!r}; start a worker with that URL"
                )
            )
        key = graphspec.cache_key(spec)
        if key not in self._graphs:
            try:
                builder = graphspec.build(spec)
            except InvalidGraphError as exc:
                raise _fail(exc) from exc
            graph = builder.compile(checkpointer=self._saver)
            self._graphs[key] = (graph, graphspec.options_by_node(builder))
        return self._graphs[key]

    @asynccontextmanager
    async def _running(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread's lease (one runner per thread, local or Temporal) and heartbeat meanwhile."""
        async with _heartbeating():
            try:
                async with thread_lease(self._url, thread_id, wait=True, timeout=LEASE_WAIT):
                    yield
            except ThreadBusyError as exc:
                # Retryable: the holder may be a worker that just died, whose lock the database drops.
                raise ApplicationError(str(exc), type="ThreadBusyError") from exc

    @activity.defn(name=PREPARE_ACTIVITY)
    async def prepare_thread(self, request: PrepareRequest) -> StepResult:
        """Apply the run's input (if any) without running a node, and report what runs next."""
        graph, options = self._graph(request.graph, request.database)
        async with self._running(request.thread_id):
            latest = await self._saver.aget_tuple(_config(request.thread_id))
            if request.input is None:
                if latest is None:
                    raise _fail(ThreadNotFoundError(request.thread_id))
            elif latest is None or latest.metadata.get(TOKEN_KEY) != request.token:
                await graph.ainvoke(
                    payload.decode(request.input),
                    _config(request.thread_id, request.token, request.graph.metadata),
                    interrupt_before="*",
                    durability="sync",
                )
            return await _describe(graph, options, request.thread_id)

    @activity.defn(name=STEP_ACTIVITY)
    async def run_step(self, request: StepRequest) -> StepResult:
        """Run the next superstep (usually one node) from the expected checkpoint and save its checkpoint."""
        graph, options = self._graph(request.graph, request.database)
        async with self._running(request.thread_id):
            latest = await self._saver.aget_tuple(_config(request.thread_id))
            if latest is not None and latest.metadata.get(TOKEN_KEY) == request.token:
                # An earlier attempt of this activity saved the step, then died before reporting it.
                return await _describe(graph, options, request.thread_id)
            found = latest.checkpoint["id"] if latest else None
            if found != request.expected_checkpoint_id:
                # Not a failure: the thread went on elsewhere, and this run has nothing left to do.
                state = await _describe(graph, options, request.thread_id)
                conflict = ThreadConflictError(request.thread_id, request.expected_checkpoint_id, found)
                state.advanced_elsewhere = str(conflict)
                return state
            value: Any = None if request.resume is None else Command(resume=payload.decode(request.resume))
            try:
                await graph.ainvoke(
                    value,
                    _config(request.thread_id, request.token, request.graph.metadata),
                    interrupt_after="*",
                    durability="sync",
                )
            except InvalidResumeError as exc:
                # The node refused the value and did not record it: the interrupt can be answered again.
                state = await _describe(graph, options, request.thread_id)
                state.resume_error = str(exc)
                return state
            return await _describe(graph, options, request.thread_id)

    def all(self) -> list[Any]:
        return [self.prepare_thread, self.run_step]


def _config(
    thread_id: str, token: str | None = None, metadata: dict[str, Any] | None = None
) -> RunnableConfig:
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    if token is not None:
        config["metadata"] = {**(metadata or {}), TOKEN_KEY: token}
    return config


async def _describe(graph: CompiledStateGraph, options: dict[str, NodeOptions], thread_id: str) -> StepResult:
    snapshot = await graph.aget_state(_config(thread_id))
    checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id") if snapshot.config else None
    interrupts = [
        PendingInterrupt(id=i.id, node=task.name, value=payload.jsonable(i.value))
        for task in snapshot.tasks
        for i in task.interrupts
    ]
    nodes = list(snapshot.next)
    status: ThreadStatus = "waiting" if interrupts else ("running" if nodes else "done")
    return StepResult(
        thread_id=thread_id,
        checkpoint_id=checkpoint_id,
        status=status,
        next=nodes,
        next_options=merge([options.get(n, NodeOptions()) for n in nodes]),
        interrupts=interrupts,
    )
