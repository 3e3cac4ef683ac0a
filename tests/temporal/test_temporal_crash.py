"""A worker process killed with SIGKILL in the middle of a node: another worker finishes the run, and
the nodes that had completed are not run again. Stopped with SIGTERM instead, it finishes its node
first."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from durable_graph.temporal.client import start_run_async
from durable_graph.temporal.models import RunResult, workflow_id_for
from tests.temporal.graphs import read_log

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]


def start_worker(address: str, task_queue: str, url: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "durable_graph.temporal", "worker", "--address", address]
    command += ["--task-queue", task_queue, "--url", url]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # a crash prints every thread's traceback to the log
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)


async def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the worker process died"
        assert time.monotonic() < deadline, f"{path} did not appear"
        await asyncio.sleep(0.1)


async def test_killed_worker_mid_node_is_replaced(
    client: Client, temporal_address: str, pg_url: str, task_queue: str, thread_id: str, tmp_path: Path
) -> None:
    log, marker, worker_log = tmp_path / "log", tmp_path / "marker", tmp_path / "worker.log"
    first = start_worker(temporal_address, task_queue, pg_url, worker_log)
    second = None
    try:
        await start_run_async(
            client,
            thread_id=thread_id,
            graph="tests.temporal.graphs:linear",
            graph_kwargs={"log_file": str(log), "nodes": 4, "slow": "n1", "marker": str(marker)},
            input={"log": []},
            url=pg_url,
            task_queue=task_queue,
            wait=False,
        )
        await wait_for(marker, first)  # n1 is running (and sleeping) in the first worker
        os.kill(first.pid, signal.SIGKILL)
        first.wait()

        second = start_worker(temporal_address, task_queue, pg_url, worker_log)
        handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)

    assert read_log(log) == ["n0", "n1", "n1", "n2", "n3"]  # only the interrupted node ran twice
    assert result.steps == 4
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert attempts == [1, 2, 1, 1]  # n0, n1 (retried after the heartbeat timeout), n2, n3


async def test_sigtermed_worker_finishes_its_node_and_hands_back_the_rest(
    client: Client, temporal_address: str, pg_url: str, task_queue: str, thread_id: str, tmp_path: Path
) -> None:
    log, marker, worker_log = tmp_path / "log", tmp_path / "marker", tmp_path / "worker.log"
    first = start_worker(temporal_address, task_queue, pg_url, worker_log)
    second = None
    slow_n1 = {"slow": "n1", "marker": str(marker), "sleep": 1.5}
    try:
        await start_run_async(
            client,
            thread_id=thread_id,
            graph="tests.temporal.graphs:linear",
            graph_kwargs={"log_file": str(log), "nodes": 4, **slow_n1},
            input={"log": []},
            url=pg_url,
            task_queue=task_queue,
            wait=False,
        )
        await wait_for(marker, first)  # n1 is running in the first worker
        first.send_signal(signal.SIGTERM)  # as systemd, Docker or Kubernetes stop it
        code = await asyncio.to_thread(first.wait, 60)  # once n1 has finished
        assert code == 0, f"the worker exited with {code}:\n{worker_log.read_text()[-6000:]}"

        second = start_worker(temporal_address, task_queue, pg_url, worker_log)
        handle = client.get_workflow_handle(workflow_id_for(thread_id), result_type=RunResult)
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)

    assert read_log(log) == ["n0", "n1", "n2", "n3"]  # n1 finished in the stopping worker, once
    assert result.steps == 4
