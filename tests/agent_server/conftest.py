"""Fixtures for the Agent Server tests: a directory laid out for ``langgraph dev`` with the
example's agent and the tests' slow graph, our checkpointer and store on the module's database."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_server.launcher import AgentServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent_server"
SLOW_GRAPH = Path(__file__).resolve().parent / "graphs.py"


def server_dir(root: Path) -> Path:
    """A working dir with the example's ``agent.py`` and ``notes.txt`` (for the agent's file tools)
    and a ``langgraph.json`` that adds the slow graph."""
    for name in ("agent.py", "notes.txt"):
        shutil.copy(EXAMPLE / name, root / name)
    config = json.loads((EXAMPLE / "langgraph.json").read_text())
    config["graphs"]["slow"] = f"{SLOW_GRAPH}:slow_graph"
    (root / "langgraph.json").write_text(json.dumps(config, indent=2))
    return root


@pytest.fixture(scope="module")
def agent_server(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentServer]:
    """``langgraph dev`` with our checkpointer and store on this module's database, started."""
    root = server_dir(tmp_path_factory.mktemp("agent-server"))
    server = AgentServer(root, {"DURABLE_GRAPH_URL": pg_url, "AGENT_WORKDIR": str(root)})
    server.start()
    try:
        yield server
    finally:
        server.stop()
