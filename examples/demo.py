"""Demo: the durable agent at work, then inspected and finished with the ``durable-graph`` CLI.

    .venv/bin/python examples/demo.py

Runs the bundled agent (plan -> tool -> evaluate) with the offline ``ScriptedModel`` on
``$DURABLE_GRAPH_URL``, else the embedded Postgres (``embedded://``), in a new temporary workdir
holding a few sample files. Two threads:

1. a question answered with the calculator and the files: runs to its final answer;
2. a search that ends in a report: stops before ``write_report``, which waits for a human.

Every node is checkpointed, so the second thread waits in the database, not in this process: the
demo ends by printing the ``durable-graph`` commands that inspect it and approve it from any shell,
and how to open the web inbox (``durable-graph serve``) to decide it in a browser.
Try another backend with e.g. ``DURABLE_GRAPH_URL=sqlite:///demo.db``.
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
from pathlib import Path
from typing import Any

from langgraph.pregel import Pregel

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import agent_input, build_agent, demo_tools, load_model
from durable_graph.runs import RunSettings, new_thread_id, thread_config
from durable_graph.runs.describe import describe_update
from durable_graph.urls import default_url

SAMPLE_FILES = {
    "notes.txt": "Orchard visit on Monday.\nBudget: 42 apples and 17 pears.\nCall the supplier.\n",
    "meeting.md": "# Weekly meeting\n\n- apples are late this week\n- order 3 more crates\n",
    "inventory.csv": "fruit,count\napples,120\npears,64\nplums,9\n",
}
TASKS = [
    "what is 120 + 64 + 9? and read inventory.csv",
    "search for apples in my files and write a report",
]


def make_workdir() -> Path:
    """A new directory with the sample files; kept after the demo so the CLI can finish thread 2."""
    workdir = Path(tempfile.mkdtemp(prefix="durable-graph-demo-"))
    for name, text in SAMPLE_FILES.items():
        (workdir / name).write_text(text, encoding="utf-8")
    return workdir


def run_thread(graph: Pregel, task: str, settings: RunSettings) -> tuple[str, dict[str, Any], list[Any]]:
    """Start a thread on ``task``, printing each node as it completes; returns (id, state, interrupts)."""
    thread_id = new_thread_id()
    print(f"\nthread: {thread_id}\ntask:   {task}")
    # the run settings go into every checkpoint's metadata, so `durable-graph approve` in another
    # process rebuilds this same graph; "sync" stores each checkpoint before the next node starts
    config = thread_config(thread_id, settings)
    for update in graph.stream(agent_input(task), config, stream_mode="updates", durability="sync"):
        for node, change in update.items():
            if node != "__interrupt__":
                print(f"  ✓ {node:<9} {describe_update(change)}")
    state = graph.get_state(config)
    return thread_id, state.values, [i.value for i in state.interrupts]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=default_url(), help="backend URL (default: %(default)s)")
    args = parser.parse_args()
    if args.url.startswith("memory:"):
        parser.error("memory:// lives inside one process; the CLI could not see the threads afterwards")

    workdir = make_workdir()
    settings = RunSettings(workdir=str(workdir))
    print(f"checkpoints: {args.url}\nworkdir:     {workdir} ({', '.join(SAMPLE_FILES)})")
    flag = "" if args.url == default_url() else f" --url {shlex.quote(args.url)}"
    with open_checkpointer(args.url) as saver:
        graph = build_agent(load_model(None), demo_tools(workdir)).compile(checkpointer=saver)
        finished, _, _ = run_thread(graph, TASKS[0], settings)
        answer = graph.get_state(thread_config(finished)).values["final_answer"]
        print("  final answer: " + answer.strip().replace("\n", "\n    "))
        waiting, _, interrupts = run_thread(graph, TASKS[1], settings)
        request = interrupts[0]
        print(f"  waiting for approval: {request['tool']}(title={request['args']['title']!r})")

    print("\nBoth threads live in the database now. Look at them, and finish the second one, with the CLI:")
    for command in (
        f"durable-graph threads{flag}",
        f"durable-graph show {finished}{flag}",
        f"durable-graph history {finished}{flag}",
        f"durable-graph show {waiting}{flag}",
        f"durable-graph approve {waiting}{flag}      # or: reject {waiting} --reason '...'",
    ):
        print(f"  {command}")
    print(f"The approved report is written to {workdir / 'reports'}")
    print("\nOr decide in a browser: the web inbox lists the waiting call, to approve, edit or reject it:")
    print(f"  durable-graph serve{flag}      # then open the link it prints")


if __name__ == "__main__":
    main()
