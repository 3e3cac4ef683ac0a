"""Approvals and crashes across processes: a thread is resumed by its id from a new process.

This module is also the worker those processes run: ``python -m tests.test_agent_processes URL BASE
start|resume|continue THREADS_JSON [--log FILE] [--slow TOOL]``. It logs every completed node and
every tool start and end to ``--log``, so the tests can count what ran.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import Command

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import InvalidResumeError
from durable_graph.graphs import (
    ScriptedModel,
    agent_input,
    build_agent,
    demo_tools,
    needs_approval,
    requires_approval,
)

ROOT = Path(__file__).resolve().parents[1]
TASK = "search for launch in the files and write a report"
SLOW_SECONDS = 120


def log_line(log: Path | None, line: str) -> None:
    if log is not None:
        with log.open("a") as f:
            f.write(line + "\n")


def logged(tool: BaseTool, log: Path | None, slow: bool) -> BaseTool:
    """``tool`` under the same name and schema, logging its start and end (and sleeping if ``slow``)."""

    def run(**kwargs: Any) -> str:
        log_line(log, f"start {tool.name}")
        if slow:
            time.sleep(SLOW_SECONDS)
        result = tool.invoke(kwargs)
        log_line(log, f"end {tool.name}")
        return str(result)

    wrapped = StructuredTool.from_function(
        run, name=tool.name, description=tool.description, args_schema=tool.args_schema
    )
    return requires_approval(wrapped) if needs_approval(tool) else wrapped


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("base", type=Path, help="each thread works in BASE/<thread id>")
    parser.add_argument("command", choices=["start", "resume", "continue"])
    parser.add_argument("threads", help="JSON: a list of thread ids, or for resume {thread: [decision, ...]}")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--slow")
    args = parser.parse_args(argv)

    threads = json.loads(args.threads)
    report: dict[str, Any] = {}
    with open_checkpointer(args.url) as saver:
        for thread in threads:
            tools = [logged(t, args.log, t.name == args.slow) for t in demo_tools(args.base / thread)]
            graph = build_agent(ScriptedModel(), tools).compile(checkpointer=saver)
            cfg: RunnableConfig = {"configurable": {"thread_id": thread}}
            errors = []
            if args.command == "start":
                inputs: list[Any] = [agent_input(TASK)]
            elif args.command == "continue":
                inputs = [None]
            else:
                inputs = [Command(resume=decision) for decision in threads[thread]]
            for one in inputs:
                try:
                    for update in graph.stream(one, cfg, stream_mode="updates", durability="sync"):
                        for node in update:
                            log_line(args.log, f"node {node}")
                except InvalidResumeError as exc:
                    errors.append(str(exc))
            state = graph.get_state(cfg)
            report[thread] = {
                "next": list(state.next),
                "interrupts": [i.value for i in state.interrupts],
                "final_answer": state.values.get("final_answer"),
                "evaluation": state.values.get("evaluation"),
                "errors": errors,
            }
    print(json.dumps(report))


def spawn(url: str, base: Path, command: str, threads: object, *options: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.test_agent_processes", url, str(base), command, json.dumps(threads)]
    return subprocess.Popen(
        [*argv, *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(url: str, base: Path, command: str, threads: object, *options: str) -> dict[str, Any]:
    process = spawn(url, base, command, threads, *options)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def new_threads(base: Path, *names: str) -> list[str]:
    """Fresh thread ids, each with its own work dir under ``base`` holding one note."""
    threads = [f"{name}-{uuid.uuid4().hex[:8]}" for name in names]
    for thread in threads:
        (base / thread).mkdir(parents=True)
        (base / thread / "notes.txt").write_text("The launch code is 4417.\n")
    return threads


def reports(workdir: Path) -> dict[str, str]:
    folder = workdir / "reports"
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_approvals_are_answered_from_another_process(url: str, tmp_path: Path) -> None:
    approved, edited, rejected = threads = new_threads(tmp_path, "approve", "edit", "reject")

    first = run(url, tmp_path, "start", threads)  # runs each thread until it asks, then exits

    for thread in threads:
        assert first[thread]["next"] == ["tool"]
        (pending,) = first[thread]["interrupts"]
        assert (pending["type"], pending["tool"]) == ("approval", "write_report")
        assert pending["args"]["content"] == "Search for 'launch':\nnotes.txt:1: The launch code is 4417."
        assert reports(tmp_path / thread) == {}

    decisions = {
        approved: [{"action": "approve"}],
        # a malformed decision is refused and changes nothing; the next one is taken
        edited: [
            {"action": "edit", "args": {"titel": "x"}},
            {"action": "edit", "args": {"title": "T", "content": "x"}},
        ],
        rejected: [{"action": "reject", "reason": "not today"}],
    }
    second = run(url, tmp_path, "resume", decisions)

    for thread in threads:
        assert second[thread]["next"] == []
        assert second[thread]["evaluation"]["verdict"] == "done"
    assert second[approved]["errors"] == second[rejected]["errors"] == []
    assert second[edited]["errors"] == [
        "edited args for 'write_report' have unknown names ['titel']; it takes ['content', 'title']"
    ]
    (report,) = reports(tmp_path / approved).values()
    assert report.endswith("notes.txt:1: The launch code is 4417.\n")
    assert "wrote reports/report-search-for-launch" in second[approved]["final_answer"]
    assert reports(tmp_path / edited) == {"t.md": "# T\n\nx\n"}
    assert "wrote reports/t.md" in second[edited]["final_answer"]
    assert reports(tmp_path / rejected) == {}
    assert "rejected this call: not today" in second[rejected]["final_answer"]


def wait_for(path: Path, line: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text().splitlines():
            return
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.05)
    raise AssertionError(f"{line!r} never appeared in {path}")


def test_a_process_killed_during_a_tool_resumes_without_rerunning_finished_work(
    pg_url: str, tmp_path: Path
) -> None:
    threads, log = new_threads(tmp_path, "crash"), tmp_path / "ran.log"
    first = run(pg_url, tmp_path, "start", threads, "--log", str(log))
    assert first[threads[0]]["interrupts"][0]["tool"] == "write_report"

    # approve, then kill the process while the (slow) report is being written
    approve = {threads[0]: [{"action": "approve"}]}
    doomed = spawn(pg_url, tmp_path, "resume", approve, "--log", str(log), "--slow", "write_report")
    try:
        wait_for(log, "start write_report", doomed)
    finally:
        if doomed.poll() is None:
            doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=30)
    assert doomed.returncode == -signal.SIGKILL

    # a new process resumes the thread by its id; the approval given before the crash still holds
    last = run(pg_url, tmp_path, "continue", threads, "--log", str(log))[threads[0]]

    assert last["next"] == [] and last["evaluation"]["verdict"] == "done"
    assert "wrote reports/" in last["final_answer"]
    assert len(reports(tmp_path / threads[0])) == 1
    ran = log.read_text().splitlines()
    assert ran == [
        # first process: plan (search) -> tool -> plan (report) -> tool asks for approval
        "node plan",
        "start search_files",
        "end search_files",
        "node tool",
        "node plan",
        "node __interrupt__",
        # second process: killed inside the approved tool call
        "start write_report",
        # third process: only the interrupted node runs again, then the rest of the graph
        "start write_report",
        "end write_report",
        "node tool",
        "node plan",
        "node evaluate",
    ]


if __name__ == "__main__":
    worker(sys.argv[1:])
