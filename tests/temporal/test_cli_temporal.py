"""The CLI on Temporal: `durable-graph worker` in its own process runs the nodes; `run --temporal`
starts the thread there and a plain `approve` reaches its run; the local commands see the same thread."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from durable_graph.cli import app

TASK = "search for apples in my files and write a report"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def cli_worker(temporal_address: str, pg_url: str) -> Iterator[str]:
    """A `durable-graph worker` process on a task queue of its own."""
    queue = "cli-" + uuid.uuid4().hex[:8]
    command = [sys.executable, "-m", "durable_graph.cli", "worker", "--temporal", temporal_address]
    process = subprocess.Popen(
        [*command, "--task-queue", queue, "--url", pg_url], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("worker on "), "the worker did not start"
    try:
        yield queue
    finally:
        process.terminate()
        process.wait(20)


def test_run_and_approve_on_temporal(
    temporal_address: str, pg_url: str, cli_worker: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("Budget: 42 apples\n")
    temporal = ["--temporal", temporal_address, "--url", pg_url]

    started = cli("run", TASK, "--workdir", str(workdir), "--task-queue", cli_worker, *temporal)
    assert started.exit_code == 4, started.output  # waiting for approval
    thread_id = started.stdout.splitlines()[0].removeprefix("thread: ")
    assert "waiting for approval: write_report" in started.stdout

    listed = cli("threads", "--json", "--url", pg_url)
    assert {t["thread_id"]: t["status"] for t in json.loads(listed.stdout)}[thread_id] == "interrupted"

    approved = cli("approve", thread_id, "--url", pg_url)  # the thread knows where it runs
    assert approved.exit_code == 0, approved.output
    assert "Budget: 42 apples" in approved.stdout
    assert len(list((workdir / "reports").glob("*.md"))) == 1

    nodes = [c["node"] for c in json.loads(cli("history", thread_id, "--json", "--url", pg_url).stdout)]
    assert nodes.count("tool") == 2  # search, then the approved report: each tool step ran once


def test_temporal_needs_a_postgres_url(temporal_address: str, tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'x.db'}"
    for command in (["run", TASK], ["worker"]):
        result = cli(*command, "--temporal", temporal_address, "--url", sqlite)
        assert result.exit_code == 2, result.output
        assert "Temporal runs need a Postgres URL" in result.output
