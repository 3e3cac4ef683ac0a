"""Compose your own agent graph: the bundled nodes plus a ``summarize`` node of your own.

    .venv/bin/python examples/custom_node.py "what is 12 * (3 + 4)? and read notes.txt"

The graph is built from the same node factories ``build_agent`` uses (``make_plan_node``,
``make_tool_node``, ``make_evaluate_node`` and the ``route_after_*`` functions), with one more
state field and one more node: after an accepted answer, ``summarize`` writes a one-line summary.
It is checkpointed like any other node, on ``--url`` (default ``$DURABLE_GRAPH_URL``, else
``embedded://``). The model is the offline ``ScriptedModel`` unless ``--model`` names another,
e.g. ``--model openai:gpt-4o-mini``; the file tools work in ``--workdir`` (default: here).
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import (
    AgentState,
    agent_input,
    demo_tools,
    load_model,
    make_evaluate_node,
    make_plan_node,
    make_tool_node,
    route_after_evaluate,
    route_after_plan,
    route_after_tool,
)
from durable_graph.urls import default_url


class SummarizedState(AgentState, total=False):
    """The agent's state plus the field our new node fills."""

    summary: str


def summarize(state: SummarizedState) -> dict[str, Any]:
    """Our node: the answer's first line, the tools behind it and the steps it took."""
    first_line = (state.get("final_answer") or "").strip().splitlines()[0]
    tools = sorted({r["tool"] for r in state.get("tool_results", [])}) or ["no tools"]
    return {"summary": f"{first_line} [{', '.join(tools)}; {state.get('step', 0)} steps]"}


def build_graph(model: BaseChatModel, tools: list[BaseTool], max_steps: int = 8) -> StateGraph:
    graph = StateGraph(SummarizedState)
    graph.add_node("plan", make_plan_node(model, tools, max_steps=max_steps))
    graph.add_node("tool", make_tool_node(tools))
    graph.add_node("evaluate", make_evaluate_node(model))
    graph.add_node("summarize", summarize)

    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", route_after_plan, ["tool", "evaluate"])
    graph.add_conditional_edges("tool", route_after_tool, ["plan", "evaluate"])
    # an accepted answer ("done") now goes through summarize instead of straight to the end
    graph.add_conditional_edges(
        "evaluate", route_after_evaluate, {"plan": "plan", "done": "summarize", "stopped": END}
    )
    graph.add_edge("summarize", END)
    return graph


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task", nargs="?", default="what is 12 * (3 + 4)?")
    parser.add_argument(
        "--url", default=None, help="checkpointer URL (default: $DURABLE_GRAPH_URL or embedded://)"
    )
    parser.add_argument("--workdir", default=".", help="the directory the file tools may use")
    parser.add_argument(
        "--model", default=None, help="e.g. openai:gpt-4o-mini (default: the offline ScriptedModel)"
    )
    args = parser.parse_args(argv)

    url = args.url or default_url()
    graph = build_graph(load_model(args.model), demo_tools(args.workdir))
    config: RunnableConfig = {"configurable": {"thread_id": f"custom-{uuid.uuid4().hex[:8]}"}}
    with open_checkpointer(url) as saver:
        out = graph.compile(checkpointer=saver).invoke(agent_input(args.task), config, durability="sync")

    print(f"thread:  {config['configurable']['thread_id']} on {url}")
    print(f"verdict: {out['evaluation']['verdict']} ({out['evaluation']['reason']})")
    print(f"answer:  {out.get('final_answer')}")
    print(f"summary: {out.get('summary')}")


if __name__ == "__main__":
    main()
