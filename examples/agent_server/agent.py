"""The bundled agent for LangGraph's Agent Server, compiled by the server with our checkpointer
and store (see ``langgraph.json``): no checkpointer here.

The offline ``ScriptedModel`` (a fake LLM) plans; give ``build_agent`` any LangChain chat model
(e.g. ``durable_graph.graphs.load_model("openai:gpt-4o-mini")``) for a real one. The file tools work
in ``$AGENT_WORKDIR`` (default: the server's current directory) and are durable: a node re-run after
a crash gets a finished call's result back instead of calling the tool again; their results are
recorded in the server's database, through the log our checkpointer entry point opens.
"""

from __future__ import annotations

import os

from langgraph.graph import StateGraph
from langgraph_sdk.runtime import ServerRuntime

from durable_graph.durable_tools import durable
from durable_graph.graphs import ScriptedModel, build_agent, demo_tools
from durable_graph.server import tool_log

# Made at import: the server calls the factory on its event loop, where it refuses file system
# calls (they would block it), and these look at the work dir.
TOOLS = demo_tools(os.environ.get("AGENT_WORKDIR", "."))


def agent(runtime: ServerRuntime) -> StateGraph:
    """The graph factory the server calls per run, with its store (ours) in ``runtime.store``."""
    tools = [durable(t, log=tool_log()) for t in TOOLS]
    return build_agent(ScriptedModel(), tools, store=runtime.store)
