"""The bundled agent for LangGraph's Agent Server, compiled by the server with our checkpointer
and store (see ``langgraph.json``): no checkpointer here.

The offline ``ScriptedModel`` (a fake LLM) plans; give ``build_agent`` any LangChain chat model
(e.g. ``durable_graph.graphs.load_model("openai:gpt-4o-mini")``) for a real one. The file tools work
in ``$AGENT_WORKDIR`` (default: the server's current directory) and are durable: a node re-run after
a crash gets a finished call's result back instead of calling the tool again.
"""

from __future__ import annotations

import os

from langgraph.graph import StateGraph
from langgraph_sdk.runtime import ServerRuntime

from durable_graph.durable_tools import durable
from durable_graph.graphs import ScriptedModel, build_agent, demo_tools

# Built once at import: the server calls the factory on its event loop, where file system calls
# are refused (they would block it).
TOOLS = [durable(t) for t in demo_tools(os.environ.get("AGENT_WORKDIR", "."))]


def agent(runtime: ServerRuntime) -> StateGraph:
    """The graph factory the server calls per run, with its store (ours) in ``runtime.store``."""
    return build_agent(ScriptedModel(), TOOLS, store=runtime.store)
