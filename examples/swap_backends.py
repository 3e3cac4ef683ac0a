"""Swap backends: the same agent graph checkpointed to memory, SQLite and Postgres, by URL alone.

    .venv/bin/python examples/swap_backends.py                       # memory, SQLite, embedded Postgres
    .venv/bin/python examples/swap_backends.py memory:// sqlite:///swap.db postgresql://me@db:5432/agents

Nothing but the URL changes between the runs: ``open_checkpointer(url)`` picks the backend, and the
graph, the input and the code that reads the result back are identical.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

from langchain_core.runnables import RunnableConfig

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import agent_input, build_agent, demo_tools
from durable_graph.urls import default_url

TASK = "what is 6 * 7 + 1?"


def run_on(url: str, workdir: Path) -> str:
    """Run the agent on ``url`` and read the answer back from the stored checkpoints."""
    config: RunnableConfig = {"configurable": {"thread_id": f"swap-{uuid.uuid4().hex[:8]}"}}
    with open_checkpointer(url) as saver:
        graph = build_agent(None, demo_tools(workdir)).compile(checkpointer=saver)
        graph.invoke(agent_input(TASK), config)
        answer = graph.get_state(config).values["final_answer"]
        checkpoints = len(list(saver.list(config)))
    print(f"{url:<40} {type(saver).__name__:<22} {checkpoints:>3} checkpoints   answer: {answer}")
    return str(answer)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="swap-backends-") as tmp:
        urls = sys.argv[1:] or ["memory://", f"sqlite:///{Path(tmp) / 'swap.db'}", default_url()]
        print(f"task: {TASK}\n")
        answers = {run_on(url, Path(tmp)) for url in urls}
    if len(answers) != 1:
        sys.exit(f"the backends disagree: {answers}")
    print("\nsame graph, same answer on every backend")


if __name__ == "__main__":
    main()
