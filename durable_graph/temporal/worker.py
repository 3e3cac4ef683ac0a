"""The worker: polls a task queue, runs the workflow and the node activities against one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from durable_graph.checkpointers import open_checkpointer
from durable_graph.temporal.activities import GraphActivities
from durable_graph.temporal.client import connect
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE
from durable_graph.temporal.workflow import GraphWorkflow
from durable_graph.urls import default_url, parse_url


@asynccontextmanager
async def running_worker(
    client: Client,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    url: str | None = None,
    max_concurrent_activities: int = 20,
) -> AsyncIterator[Worker]:
    """A worker running in this event loop until the block exits; threads are stored at ``url``."""
    url = url or default_url()
    parse_url(url)
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
    """Run a worker until cancelled."""
    client = await connect(address, namespace=namespace)
    async with running_worker(client, task_queue=task_queue, url=url):
        await asyncio.Event().wait()


def run_worker(
    address: str, *, task_queue: str = DEFAULT_TASK_QUEUE, url: str | None = None, namespace: str = "default"
) -> None:
    """Run a worker in the foreground until Ctrl-C (the CLI's ``worker`` command)."""
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(address, task_queue=task_queue, url=url, namespace=namespace))
