"""Tools for the inbox tests: the demo tools, with a ``write_report`` that waits to be let go."""

from __future__ import annotations

import time
from pathlib import Path

from langchain_core.tools import BaseTool, StructuredTool

from durable_graph.graphs import demo_tools, requires_approval

STARTED = "report-started.log"
RELEASE = "release"


def held_report_tools(workdir: str) -> list[BaseTool]:
    """The demo tools, except that ``write_report`` notes each start in ``report-started.log`` and
    then waits until a ``release`` file exists in the workdir before writing."""
    root = Path(workdir)
    tools = demo_tools(workdir)
    real = next(t for t in tools if t.name == "write_report")

    def write_report(title: str, content: str) -> str:
        """Write a markdown report `reports/<title>.md` into the workdir; returns its path."""
        with (root / STARTED).open("a") as log:
            log.write("started\n")
        deadline = time.monotonic() + 60
        while not (root / RELEASE).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return str(real.invoke({"title": title, "content": content}))

    held = requires_approval(StructuredTool.from_function(write_report))
    return [t for t in tools if t.name != "write_report"] + [held]
