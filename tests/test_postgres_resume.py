"""Done when: a run killed with SIGKILL mid-node resumes by thread id in another process, and the
nodes that had completed do not run again.

The graph runs in subprocesses (``python -m tests.test_postgres_resume <url> <thread> <dir> <mode>``).
Every node appends its name to ``log`` when it completes; ``slow`` first drops a marker file and
then sleeps, unless the marker is already there (that is, on the resumed run).
"""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from durable_graph.checkpointers import open_checkpointer

NODES = ["plan", "fetch", "slow", "finish"]
ROOT = Path(__file__).resolve().parent.parent


class State(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]


def build(saver: Any, workdir: Path) -> Any:
    def node(name: str) -> Any:
        def run(state: State) -> State:
            if name == "slow":
                marker = workdir / "slow.started"
                if not marker.exists():
                    marker.write_text(str(os.getpid()))
                    time.sleep(120)
            with (workdir / "log").open("a") as log:
                log.write(name + "\n")
            return {"notes": [f"{name} saw {len(state.get('notes', []))} notes"]}

        return run

    builder = StateGraph(State)
    previous = START
    for name in NODES:
        builder.add_node(name, node(name))
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


def main(url: str, thread_id: str, workdir: Path, mode: str) -> None:
    config = {"configurable": {"thread_id": thread_id}}
    if mode == "start":

        async def start() -> None:
            async with open_checkpointer(url) as saver:
                await build(saver, workdir).ainvoke({"notes": ["begin"]}, config, durability="sync")

        asyncio.run(start())
    else:
        with open_checkpointer(url) as saver:
            state = build(saver, workdir).invoke(None, config)
        (workdir / "result").write_text("\n".join(state["notes"]))


def spawn(url: str, thread_id: str, workdir: Path, mode: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.test_postgres_resume", url, thread_id, str(workdir), mode]
    return subprocess.Popen(args, cwd=ROOT)


def test_killed_run_resumes_in_another_process_without_rerunning_nodes(pg_url: str, tmp_path: Path) -> None:
    thread_id = "resume-" + uuid.uuid4().hex
    first = spawn(pg_url, thread_id, tmp_path, "start")
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "slow.started").exists():
            assert first.poll() is None, f"the first run exited early with {first.returncode}"
            assert time.monotonic() < deadline, "the slow node never started"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    assert (tmp_path / "log").read_text().split() == ["plan", "fetch"]

    second = spawn(pg_url, thread_id, tmp_path, "resume")
    assert second.wait(120) == 0
    assert (tmp_path / "log").read_text().split() == NODES, "a completed node ran again"
    assert (tmp_path / "result").read_text().splitlines() == [
        "begin",
        "plan saw 1 notes",
        "fetch saw 2 notes",
        "slow saw 3 notes",
        "finish saw 4 notes",
    ]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4])
