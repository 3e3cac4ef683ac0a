"""The CLI across processes: approvals answered by a new process, and a run killed with SIGKILL in
the middle of its tool node continued by ``resume`` in a new process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool, StructuredTool
from typer.testing import CliRunner, Result

from durable_graph.cli import app
from durable_graph.graphs import demo_tools

ROOT = Path(__file__).resolve().parents[1]
REPORT_TASK = "search for apples in my files and write a report"
STARTED = "tool-started.log"
RELEASE = "release"


def blocking_tools(workdir: str) -> list[BaseTool]:
    """The demo tools, except that ``read_file`` notes each start in ``tool-started.log`` and then
    waits until a ``release`` file exists in the workdir before reading."""
    root = Path(workdir)
    tools = [t for t in demo_tools(workdir) if t.name != "read_file"]
    real_read = next(t for t in demo_tools(workdir) if t.name == "read_file")

    def read_file(path: str) -> str:
        """Read a text file of the workdir."""
        with (root / STARTED).open("a") as log:
            log.write("started\n")
        deadline = time.monotonic() + 120
        while not (root / RELEASE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return str(real_read.invoke({"path": path}))

    return [*tools, StructuredTool.from_function(read_file)]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("Budget: 42 apples\n")
    return work


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "durable_graph.cli", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "DURABLE_GRAPH_URL": "memory://"}


def new_process(*args: str) -> subprocess.Popen[str]:
    """The CLI started in a new process of its own."""
    return subprocess.Popen(
        command(*args), cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def cli(*args: str) -> Result:
    """The CLI in this process (for looking at threads)."""
    return CliRunner().invoke(app, list(args))


def thread_of(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("thread: "), stdout
    return first.removeprefix("thread: ")


def listed(url: str, thread_id: str) -> dict:
    result = cli("threads", "--json", "--url", url)
    assert result.exit_code == 0, result.output
    return {t["thread_id"]: t for t in json.loads(result.stdout)}[thread_id]


def status(url: str, thread_id: str) -> str:
    return str(listed(url, thread_id)["status"])


def test_approve_edit_reject_from_new_processes(url: str, workdir: Path) -> None:
    started = [cli("run", REPORT_TASK, "--url", url, "--workdir", str(workdir)) for _ in range(3)]
    assert [r.exit_code for r in started] == [4, 4, 4], [r.output for r in started]
    approved, edited, rejected = (thread_of(r.stdout) for r in started)
    assert all(status(url, t) == "interrupted" for t in (approved, edited, rejected))

    answers = [
        new_process("approve", approved, "--url", url),
        new_process("edit", edited, "--args", '{"title": "Edited", "content": "only apples"}', "--url", url),
        new_process("reject", rejected, "--reason", "no reports", "--url", url),
    ]
    (code_a, out_a, err_a), (code_e, _, err_e), (code_r, out_r, err_r) = (finish(p) for p in answers)
    assert (code_a, code_e, code_r) == (0, 0, 0), (err_a, err_e, err_r)
    assert thread_of(out_a) == approved
    assert "done thread" in out_a
    assert "rejected this call: no reports" in out_r
    assert (workdir / "reports" / "edited.md").read_text() == "# Edited\n\nonly apples\n"
    assert [status(url, t) for t in (approved, edited, rejected)] == ["done"] * 3
    reports = sorted(p.name for p in (workdir / "reports").iterdir())
    assert reports == ["edited.md", "report-search-for-apples-in-my-files-and-write-a-report.md"]


def test_killed_run_is_resumed_by_a_new_process(url: str, workdir: Path) -> None:
    tools = f"{__name__}:blocking_tools"
    thread_id = "killed-" + url.split(":", 1)[0]
    run = new_process(
        "run",
        "read notes.txt",
        "--thread",
        thread_id,
        "--url",
        url,
        "--workdir",
        str(workdir),
        "--tools",
        tools,
    )
    try:
        deadline = time.monotonic() + 120
        while not (workdir / STARTED).exists():
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the tool node never started"
            time.sleep(0.05)
        assert (listed(url, thread_id)["status"], listed(url, thread_id)["active"]) == ("running", True)
        run.send_signal(signal.SIGKILL)  # in the middle of the tool node
        stdout, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGKILL
    assert thread_of(stdout) == thread_id
    assert "✓ step 1 plan" in stdout
    assert (listed(url, thread_id)["status"], listed(url, thread_id)["active"]) == ("running", False)
    assert "running (stopped: resume it)" in cli("threads", "--url", url).stdout

    (workdir / RELEASE).write_text("go")
    code, stdout, stderr = finish(new_process("resume", thread_id, "--url", url))
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == f"thread: {thread_id}"
    assert "tool" in lines[1] and "read_file" in lines[1] and "Budget: 42 apples" in lines[1]
    assert "step 2" in lines[2] and "plan" in lines[2]  # the plan of step 1 did not run again
    assert "Contents of notes.txt" in stdout
    assert (workdir / STARTED).read_text() == "started\n" * 2  # only the killed node ran again
    assert status(url, thread_id) == "done"

    history = json.loads(cli("history", thread_id, "--json", "--url", url).stdout)
    assert [r["node"] for r in history] == ["input", "__start__", "plan", "tool", "plan", "evaluate"]
    again = cli("resume", thread_id, "--url", url)
    assert again.exit_code == 2
    assert "already done" in again.stderr
