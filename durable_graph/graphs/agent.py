"""``build_agent``: the plan -> tool -> evaluate graph, with long-term memory when given a store."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from durable_graph.graphs.memories import make_recall_node, make_remember_node
from durable_graph.graphs.nodes import (
    make_evaluate_node,
    make_plan_node,
    make_tool_node,
    route_after_evaluate,
    route_after_plan,
    route_after_tool,
)
from durable_graph.graphs.scripted import ScriptedModel
from durable_graph.graphs.state import DEFAULT_MAX_STEPS, AgentState


def build_agent(
    model: BaseChatModel | None = None,
    tools: Sequence[BaseTool] | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    store: BaseStore | None = None,
) -> StateGraph:
    """The agent graph, uncompiled: call ``.compile(checkpointer=..., store=...)`` on it.

    ``START -> [recall ->] plan``; ``plan`` -> ``tool`` while the model calls tools, ``tool`` -> ``plan``
    with the results; an answer goes to ``evaluate``, which sends it back to ``plan`` ("retry") or
    ends the run ("done" [-> ``remember``], or "stopped" at ``max_steps``). ``model`` defaults to the
    offline ``ScriptedModel``; ``recall`` and ``remember`` exist only when ``store`` is given.
    """
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    model = model if model is not None else ScriptedModel()
    if not isinstance(model, BaseChatModel):
        hint = f"; load_model({model!r}) turns a spec into one" if isinstance(model, str) else ""
        raise TypeError(f"model must be a langchain BaseChatModel, got {type(model).__name__}{hint}")
    tools = list(tools or [])
    not_tools = [repr(t) for t in tools if not isinstance(t, BaseTool)]
    if not_tools:
        raise TypeError(f"tools must be langchain BaseTool objects; these are not: {', '.join(not_tools)}")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"tool names must be unique, got {names}")

    graph = StateGraph(AgentState)
    graph.add_node("plan", make_plan_node(model, tools, max_steps=max_steps))
    graph.add_node("tool", make_tool_node(tools))
    graph.add_node("evaluate", make_evaluate_node(model))
    graph.add_conditional_edges("plan", route_after_plan, ["tool", "evaluate"])
    graph.add_conditional_edges("tool", route_after_tool, ["plan", "evaluate"])
    done = END
    if store is None:
        graph.add_edge(START, "plan")
    else:
        graph.add_node("recall", make_recall_node(store))
        graph.add_node("remember", make_remember_node(store))
        graph.add_edge(START, "recall")
        graph.add_edge("recall", "plan")
        graph.add_edge("remember", END)
        done = "remember"
    graph.add_conditional_edges(
        "evaluate", route_after_evaluate, {"plan": "plan", "done": done, "stopped": END}
    )
    return graph
