"""Approval flow: a thread pauses for a human, and a different process answers it.

    .venv/bin/python examples/approval_flow.py                 # approve
    .venv/bin/python examples/approval_flow.py --decision reject

1. This process starts a thread whose agent wants to call ``write_report``. The tool needs approval,
   so the graph stops at an ``interrupt``; the pause is a checkpoint, and this process lets go.
2. A second process (this script again, with ``--answer THREAD``) opens the same database, rebuilds
   the graph, and answers with ``approve()``, ``edit({...})`` or ``reject("why")``. The thread runs
   to its end there.
3. Back here, the final state is read from the database.

The same answer can come from a shell: ``durable-graph approve <thread id>``. Needs a database two
processes share: ``$DURABLE_GRAPH_URL``, else the embedded Postgres; e.g. ``sqlite:///approval.db``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import agent_input, approve, build_agent, demo_tools, edit, reject
from durable_graph.runs import new_thread_id, thread_config
from durable_graph.urls import default_url

TASK = "search for apples in my files and write a report"


def graph_for(saver: BaseCheckpointSaver, workdir: str) -> Pregel:
    """The same graph in both processes: same nodes, same tools, same workdir."""
    return build_agent(None, demo_tools(workdir)).compile(checkpointer=saver)


def start(url: str, decision: str) -> None:
    workdir = tempfile.mkdtemp(prefix="approval-flow-")
    Path(workdir, "notes.txt").write_text("We have 42 apples and 17 pears.\n", encoding="utf-8")
    thread_id = new_thread_id()
    config = thread_config(thread_id)
    with open_checkpointer(url) as saver:
        graph = graph_for(saver, workdir)
        graph.invoke(agent_input(TASK), config, durability="sync")
        request = graph.get_state(config).interrupts[0].value
        print(f"[first process]  thread {thread_id} is waiting: {request['message']}")

    print(f"[first process]  asking a second process to {decision} it ...", flush=True)
    answer = [sys.executable, __file__, "--url", url, "--answer", thread_id, "--workdir", workdir]
    subprocess.run([*answer, "--decision", decision], check=True)

    with open_checkpointer(url) as saver:
        state = graph_for(saver, workdir).get_state(config)
    print(f"[first process]  final answer read back from the database:\n{state.values['final_answer']}")
    reports = sorted(p.name for p in Path(workdir, "reports").glob("*.md")) if decision != "reject" else []
    print(f"[first process]  reports written: {reports or 'none'}")


def answer(url: str, thread_id: str, workdir: str, decision: str) -> None:
    command: Command = {
        "approve": approve(),
        "edit": edit({"title": "Apples (edited)", "content": "We have 42 apples."}),
        "reject": reject("no reports today"),
    }[decision]
    with open_checkpointer(url) as saver:
        graph = graph_for(saver, workdir)
        print(f"[second process] found thread {thread_id}; answering: {command.resume}")
        graph.invoke(command, thread_config(thread_id), durability="sync")
        print(f"[second process] thread {thread_id} is now done")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=default_url(), help="backend URL (default: %(default)s)")
    parser.add_argument("--decision", choices=["approve", "edit", "reject"], default="approve")
    parser.add_argument("--answer", metavar="THREAD", help=argparse.SUPPRESS)  # the second process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.url.startswith("memory:"):
        parser.error("memory:// lives inside one process; use a database two processes share")
    if args.answer:
        answer(args.url, args.answer, args.workdir, args.decision)
    else:
        start(args.url, args.decision)


if __name__ == "__main__":
    main()
