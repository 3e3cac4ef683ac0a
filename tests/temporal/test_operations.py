"""Operating durable-graph as separate processes, with the real Temporal dev server and the real
embedded Postgres: a thread on Temporal is answered by a plain CLI call, taken back without leaving a
workflow behind, and `worker` and `dev-server` stop cleanly on SIGTERM, children and Postgres too;
after a SIGKILL the kernel and the embedded Postgres's watchdog clean up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from typer.testing import CliRunner

from durable_graph.cli import app
from durable_graph.embedded import WATCHDOG_FILE
from durable_graph.temporal.devserver import free_port
from durable_graph.temporal.models import workflow_id_for

TASK = "search for apples in my files and write a report"
CLI = [sys.executable, "-m", "durable_graph.cli"]


def _env() -> dict[str, str]:
    """This environment without the defaults that would choose a database or a runner for us."""
    return {k: v for k, v in os.environ.items() if k not in ("DURABLE_GRAPH_URL", "DURABLE_GRAPH_TEMPORAL")}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """A `durable-graph` command in a process of its own."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(), timeout=300)


def node_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("✓")]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def statuses(address: str, thread_id: str) -> list[WorkflowExecutionStatus | None]:
    """The status of every workflow run of the thread, from the Temporal server."""

    async def query() -> list[WorkflowExecutionStatus | None]:
        client = await Client.connect(address)
        return [w.status async for w in client.list_workflows(f"WorkflowId = '{workflow_id_for(thread_id)}'")]

    return asyncio.run(query())


def shown(url: str, thread_id: str) -> dict:
    result = cli("show", thread_id, "--json", "--url", url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Worker:
    """`durable-graph worker` in its own process on an embedded Postgres of its own."""

    def __init__(self, address: str, data_dir: Path, queue: str) -> None:
        self.url = f"embedded://{data_dir}"
        self.data_dir, self.queue = data_dir, queue
        self.process = subprocess.Popen(
            [*CLI, "worker", "--temporal", address, "--task-queue", queue, "--url", self.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().startswith("worker on "), "the worker did not start"
        wait_until(lambda: self._postmaster() is not None and self._watchdog() is not None, 60)

    @property
    def postmaster_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def _postmaster(self) -> int | None:
        lines = self.postmaster_file.read_text().split() if self.postmaster_file.exists() else []
        return int(lines[0]) if lines else None

    def _watchdog(self) -> int | None:
        path = self.data_dir / WATCHDOG_FILE
        text = path.read_text().strip() if path.exists() else ""
        return int(text) if text else None

    def server_pids(self) -> list[int]:
        """The embedded Postgres's postmaster and the data dir's watchdog."""
        return [pid for pid in (self._postmaster(), self._watchdog()) if pid is not None]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class DevServer:
    """`durable-graph dev-server` in its own process; ``child`` is the `temporal` server it started."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        command = [*CLI, "dev-server", "--port", str(self.port), "--ui-port", str(free_port())]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, 60)
        [child] = psutil.Process(self.process.pid).children()
        self.child = child.pid

    def _listening(self) -> bool:
        assert self.process.poll() is None, "the dev server exited"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def embedded_worker(temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker(temporal_address, tmp_path_factory.mktemp("ops") / "pg", "ops-" + uuid.uuid4().hex[:8])
    try:
        yield worker
    finally:
        worker.process.send_signal(signal.SIGTERM)
        worker.process.wait(60)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    notes = tmp_path / "work"
    notes.mkdir()
    (notes / "notes.txt").write_text("Budget: 42 apples\n")
    return notes


def run_on_temporal(address: str, worker: Worker, workdir: Path) -> tuple[str, str]:
    """Start the task on Temporal in a process of its own; returns the thread id and the output."""
    on_worker = ["--temporal", address, "--task-queue", worker.queue, "--url", worker.url]
    started = cli("run", TASK, "--workdir", str(workdir), *on_worker)
    assert started.returncode == 4, started.stdout + started.stderr  # waiting for approval
    return started.stdout.splitlines()[0].removeprefix("thread: "), started.stdout


def test_a_thread_on_temporal_is_answered_by_a_plain_cli_call(
    temporal_address: str, embedded_worker: Worker, workdir: Path, tmp_path: Path
) -> None:
    thread_id, started = run_on_temporal(temporal_address, embedded_worker, workdir)
    assert f"approve  durable-graph approve {thread_id} --url" in started  # no --temporal to add

    approved = cli("approve", thread_id, "--url", embedded_worker.url)  # no flag: the thread knows
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert statuses(temporal_address, thread_id) == [WorkflowExecutionStatus.COMPLETED]
    state = shown(embedded_worker.url, thread_id)
    assert state["status"] == "done" and state["runner"]["kind"] == "temporal"
    assert state["runner"]["task_queue"] == embedded_worker.queue

    # the same lines per node as the same task run locally
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    (local_dir / "notes.txt").write_text("Budget: 42 apples\n")
    sqlite = ["--url", f"sqlite:///{tmp_path / 'local.db'}"]
    runner = CliRunner()
    local = runner.invoke(app, ["run", TASK, "--workdir", str(local_dir), "--thread", "here", *sqlite])
    assert local.exit_code == 4, local.output
    assert node_lines(started) == node_lines(local.stdout) and len(node_lines(started)) == 3
    local_approved = runner.invoke(app, ["approve", "here", *sqlite])
    assert node_lines(approved.stdout) == node_lines(local_approved.stdout)
    assert len(node_lines(approved.stdout)) == 3


def test_a_thread_taken_back_leaves_no_workflow_running_or_failed(
    temporal_address: str, embedded_worker: Worker, workdir: Path
) -> None:
    thread_id, _ = run_on_temporal(temporal_address, embedded_worker, workdir)

    rejected = cli("reject", thread_id, "--reason", "not today", "--local", "--url", embedded_worker.url)
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr
    assert "✓ tool  write_report" in rejected.stdout and "[rejected]" in rejected.stdout
    assert statuses(temporal_address, thread_id) == [WorkflowExecutionStatus.CANCELED]
    state = shown(embedded_worker.url, thread_id)
    assert state["status"] == "done" and state["runner"] == {"kind": "local"}
    assert not (workdir / "reports").exists()  # the rejected report was never written


def test_sigterm_stops_worker_and_dev_server_with_their_servers(tmp_path: Path, workdir: Path) -> None:
    server = DevServer()
    worker = Worker(server.address, tmp_path / "pg", "term")
    try:
        thread_id, _ = run_on_temporal(server.address, worker, workdir)
        pids = worker.server_pids()
        assert len(pids) == 2 and all(alive(pid) for pid in pids)

        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0
        wait_until(lambda: not any(alive(pid) for pid in pids))  # the watchdog leaves after Postgres
        assert not worker.postmaster_file.exists()  # a clean stop, by the last user

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
        assert not alive(server.child)
    finally:
        worker.stop()
        server.stop()

    # the thread waits on a Temporal server that is gone: answering it says so and runs nothing here
    approved = cli("approve", thread_id, "--url", worker.url)
    assert approved.returncode == 5
    assert f"runs on Temporal at {server.address}" in approved.stderr
    assert shown(worker.url, thread_id)["status"] == "interrupted"


def test_sigkill_leaves_nothing_running_for_long(tmp_path: Path) -> None:
    server = DevServer()
    worker = Worker(server.address, tmp_path / "pg", "kill")
    try:
        pids = worker.server_pids()
        worker.process.kill()  # the embedded Postgres's last user: its watchdog stops it
        worker.process.wait()
        wait_until(lambda: not any(alive(pid) for pid in pids))
        assert not worker.postmaster_file.exists()

        server.process.kill()  # the kernel stops its child (PR_SET_PDEATHSIG)
        server.process.wait()
        wait_until(lambda: not alive(server.child), 15)
    finally:
        worker.stop()
        server.stop()
