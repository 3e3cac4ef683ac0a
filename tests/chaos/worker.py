"""Small graphs the crash tests run in a subprocess and kill.

``python -m tests.chaos.worker SCENARIO URL THREAD WORKDIR`` runs one thread of a scenario graph with
``durability="sync"``, printing a line at the moment the test wants to kill it. The same module builds
the graphs the test resumes in its own process. Side effects are lines appended to files in WORKDIR,
so a test can count how often each piece of code really ran.
"""

from __future__ import annotations

import operator
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.tools import tool
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph

from durable_graph.checkpointers import open_checkpointer
from durable_graph.durable_tools import durable_tool

ROOT = Path(__file__).resolve().parents[2]
HOLD_FILE = "hold"
"""While this file exists in WORKDIR, a scenario stops at its kill point (and waits to be killed)."""


class LogState(TypedDict, total=False):
    task: str
    log: Annotated[list[str], operator.add]


def count(workdir: Path, name: str) -> int:
    """How many times the effect ``name`` happened in ``workdir``."""
    path = workdir / f"{name}.count"
    return len(path.read_text().splitlines()) if path.exists() else 0


def effect(workdir: Path, name: str) -> int:
    """Record one more run of ``name``; returns how many runs there were so far."""
    with open(workdir / f"{name}.count", "a") as f:
        f.write("ran\n")
    return count(workdir, name)


def kill_point(workdir: Path, label: str) -> None:
    """Say ``label`` on stdout, then wait to be killed while the hold file exists."""
    print(label, flush=True)
    while (workdir / HOLD_FILE).exists():
        time.sleep(0.05)


def tool_graph(workdir: Path, *, stop_inside_tool: bool = False) -> StateGraph:
    """``act`` calls the durable tool ``bump`` (a side effect), then lingers before finishing.
    With ``stop_inside_tool`` it lingers after the side effect, before the tool returns."""

    @durable_tool
    @tool
    def bump(label: str) -> str:
        """Append one line to the side-effect file; return which call this was."""
        runs = effect(workdir, "bump")
        if stop_inside_tool:
            kill_point(workdir, "effect-done")
        return f"{label}-{runs}"

    def act(state: LogState) -> LogState:
        message = bump.invoke({"type": "tool_call", "id": "call-1", "name": "bump", "args": {"label": "b"}})
        kill_point(workdir, "tool-done")
        effect(workdir, "act")
        return {"log": [message.content]}

    graph = StateGraph(LogState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    graph.add_edge("act", END)
    return graph


def parallel_graph(workdir: Path) -> StateGraph:
    """``fast`` and ``slow`` run in one superstep; ``slow`` lingers until ``fast``'s writes are stored."""

    def fast(state: LogState) -> LogState:
        effect(workdir, "fast")
        return {"log": ["fast"]}

    def slow(state: LogState) -> LogState:
        effect(workdir, "slow")
        config = get_config()
        saver = config["configurable"]["__pregel_checkpointer"]
        latest = {"configurable": {"thread_id": config["configurable"]["thread_id"], "checkpoint_ns": ""}}
        while (workdir / HOLD_FILE).exists():
            stored = saver.get_tuple(latest)
            if stored and any(channel == "log" for _, channel, _ in stored.pending_writes or []):
                kill_point(workdir, "fast-stored")
            time.sleep(0.02)
        return {"log": ["slow"]}

    def join(state: LogState) -> LogState:
        effect(workdir, "join")
        return {"log": ["join"]}

    graph = StateGraph(LogState)
    graph.add_node("fast", fast)
    graph.add_node("slow", slow)
    graph.add_node("join", join)
    graph.add_edge(START, "fast")
    graph.add_edge(START, "slow")
    graph.add_edge(["fast", "slow"], "join")
    graph.add_edge("join", END)
    return graph


SCENARIOS = {
    "tool": tool_graph,
    "inside-tool": lambda workdir: tool_graph(workdir, stop_inside_tool=True),
    "parallel": parallel_graph,
}


def run_until(scenario: str, url: str, thread_id: str, workdir: Path, label: str) -> None:
    """Run a worker scenario in a subprocess and SIGKILL it once it prints ``label``."""
    (workdir / HOLD_FILE).touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.worker", scenario, url, thread_id, str(workdir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (workdir / HOLD_FILE).unlink()
    assert line == label, f"worker printed {line!r} instead of {label!r} (exit {proc.returncode})"


def run(scenario: str, url: str, thread_id: str, workdir: Path, inputs: Any) -> dict[str, Any]:
    """Run (``inputs`` = the input) or resume (``inputs=None``) one thread to its end."""
    with open_checkpointer(url) as saver:
        graph = SCENARIOS[scenario](workdir).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": thread_id}}
        return graph.invoke(inputs, config, durability="sync")  # type: ignore[arg-type]


def main() -> None:
    scenario, url, thread_id, workdir = sys.argv[1:5]
    run(scenario, url, thread_id, Path(workdir), {"task": "go", "log": []})
    print("finished", flush=True)


if __name__ == "__main__":
    main()
