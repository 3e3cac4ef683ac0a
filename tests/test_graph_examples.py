"""``examples/custom_node.py``: the agent composed from the node factories plus a node of its own."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from langchain_core.runnables import RunnableConfig

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import ScriptedModel, demo_tools

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_node.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_node", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_node_example_runs_and_checkpoints_its_summary(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Budget: 42 apples.\n")
    url = f"sqlite:///{tmp_path / 'example.db'}"
    task = "what is 6 * 7? and read notes.txt"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", url, "--workdir", str(tmp_path), task],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(
        line.split(":", 1) for line in done.stdout.splitlines() if line[:1].isalpha() and ":" in line
    )
    assert lines["verdict"].strip().startswith("done")
    assert lines["summary"].strip() == "6 * 7 = 42 [calculator, read_file; 2 steps]"

    # the thread, with the new node's output, is in the database the example wrote to
    thread = lines["thread"].split()[0]
    graph = load_example().build_graph(ScriptedModel(), demo_tools(tmp_path))
    with open_checkpointer(url) as saver:
        compiled = graph.compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        state = compiled.get_state(config)
        steps = [h.metadata.get("step") for h in compiled.get_state_history(config)]
    assert state.values["summary"] == lines["summary"].strip()
    assert "Budget: 42 apples." in state.values["final_answer"]
    assert len(steps) == 7  # the input, the start, then one per node: plan, tool, plan, evaluate, summarize


def test_the_example_graph_has_the_extra_node() -> None:
    graph = load_example().build_graph(ScriptedModel(), [])
    assert set(graph.nodes) == {"plan", "tool", "evaluate", "summarize"}
