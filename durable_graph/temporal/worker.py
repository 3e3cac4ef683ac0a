"""The worker: polls a task queue, runs the workflow and the node activities against one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from durable_graph.checkpointers import open_checkpointer
from durable_graph.processes import until_stopped
from durable_graph.temporal.activities import GraphActivities
from durable_graph.temporal.client import check_url, connect
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE
from durable_graph.temporal.workflow import GraphWorkflow
from durable_graph.urls import default_url


@asynccontextmanager
async def running_worker(
    client: Client,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    url: str | None = None,
    max_concurrent_activities: int = 20,
) -> AsyncIterator[Worker]:
    """A worker running in this event loop until the block exits; threads are stored at ``url`` (a
    Postgres every worker reaches: ``check_url``). When the block exits, running nodes get
    ``graceful_shutdown_timeout`` to finish; the others are cancelled and retried by other workers."""
    url = url or default_url()
    check_url(url)
    async with open_checkpointer(url) as saver:
        activities = GraphActivities(saver, url)
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[GraphWorkflow],
            activities=activities.all(),
            max_concurrent_activities=max_concurrent_activities,
            graceful_shutdown_timeout=timedelta(seconds=5),
        )
        async with worker:
            yield worker


async def serve(
    address: str, *, task_queue: str = DEFAULT_TASK_QUEUE, url: str | None = None, namespace: str = "default"
) -> None:
    """Run a worker until Ctrl-C, SIGTERM or SIGHUP (or until cancelled)."""
    client = await connect(address, namespace=namespace)
    async with running_worker(client, task_queue=task_queue, url=url):
        await until_stopped()


def run_worker(
    address: str, *, task_queue: str = DEFAULT_TASK_QUEUE, url: str | None = None, namespace: str = "default"
) -> None:
    """Run a worker in the foreground until Ctrl-C, SIGTERM or SIGHUP (the CLI's ``worker`` command).

    Nodes running then get the worker's graceful shutdown time to finish; the rest are cancelled and
    retried on other workers. The database is closed before this returns (an embedded Postgres that
    this process was the last user of stops when the process exits)."""
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(address, task_queue=task_queue, url=url, namespace=namespace))
