"""Fixtures of the inbox tests: threads waiting for approval, and the inbox app on a real backend."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import agent_input
from durable_graph.runs import RunSettings, new_thread_id
from durable_graph.runs.agent import build_graph
from durable_graph.runs.runner import run_config, stream
from durable_graph.web import create_app

REPORT_TASK = "search for apples in my files and write a report"
TOKEN = "test-token"
ORIGIN = "http://127.0.0.1:8765"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("Budget: 42 apples and 17 pears.\n")
    return work


def start_waiting(url: str, workdir: Path, task: str = REPORT_TASK, tools: str | None = None) -> str:
    """A new thread of the bundled agent (offline scripted model) run until it waits for approval
    of ``write_report``; returns its id."""
    thread_id = new_thread_id()
    settings = RunSettings(workdir=str(workdir), tools=tools)
    with open_checkpointer(url) as saver:
        events = list(
            stream(build_graph(settings, saver), agent_input(task), run_config(thread_id, settings))
        )
    assert events[-1].interrupts[0]["tool"] == "write_report"
    return thread_id


class Inbox:
    """A test client of the inbox app, logged in as a browser would be."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def form_fields(self, thread_id: str) -> dict[str, str]:
        """The hidden fields of the thread page's decision forms (CSRF token, interrupt id)."""
        html = self.page(f"/threads/{thread_id}")
        return {
            name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)  # type: ignore[union-attr]
            for name in ("csrf_token", "interrupt_id")
        }

    def decide(self, thread_id: str, action: str, **fields: str) -> Any:
        """Send a decision form of the thread page, as the browser does."""
        data = {**self.form_fields(thread_id), "action": action, **fields}
        return self.client.post(
            f"/threads/{thread_id}/decision", data=data, headers={"origin": ORIGIN}, follow_redirects=False
        )

    def progress(self, thread_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/threads/{thread_id}/progress")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_until_stopped(self, thread_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (progress := self.progress(thread_id))["active"]:
            assert time.monotonic() < deadline, progress
            time.sleep(0.05)
        return progress


@contextmanager
def inbox_app(url: str, token: str = TOKEN) -> Iterator[TestClient]:
    """The real inbox app on ``url``, served in this process; the client is not logged in."""
    with (
        open_checkpointer(url) as saver,
        TestClient(create_app(saver, url=url, token=token), base_url=ORIGIN) as client,
    ):
        yield client


@pytest.fixture
def inbox(url: str) -> Iterator[Inbox]:
    """The inbox on the ``url`` backend (a SQLite file, then Postgres), logged in."""
    with inbox_app(url) as client:
        assert client.get(f"/login?token={TOKEN}", follow_redirects=False).status_code == 303
        yield Inbox(client)


ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """``durable-graph serve`` running in a process of its own."""

    process: subprocess.Popen[str]
    base: str
    printed: list[str]
    """The lines it printed on start."""

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        """Send ``sig`` and wait for the process to end; returns its exit code and what it printed then."""
        self.process.send_signal(sig)
        stdout, _ = self.process.communicate(timeout=90)
        return self.process.returncode, stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(url: str, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``durable-graph serve --url URL`` on a free port, started in the repository (so that tools
    modules of the tests import), until it answers; killed at the end if it is still running."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "DURABLE_GRAPH_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "durable_graph.cli", "serve", "--url", url, "--port", str(port), *args],
        cwd=ROOT,
        env={**environment, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline().rstrip("\n") for _ in range(2)]
        if printed[1].startswith("no --token"):  # then the link with the new token follows
            printed.append(process.stdout.readline().rstrip("\n"))
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "durable-graph serve did not answer"
            time.sleep(0.1)
        yield Server(process, base, printed)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
