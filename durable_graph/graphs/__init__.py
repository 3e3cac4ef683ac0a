"""The agent graph: plan / tool / evaluate nodes, state, models, tools and human approval."""

from durable_graph.graphs.agent import build_agent
from durable_graph.graphs.approval import (
    Decision,
    approval_request,
    approve,
    edit,
    needs_approval,
    parse_decision,
    reject,
    requires_approval,
)
from durable_graph.graphs.memories import (
    Ranking,
    make_recall_node,
    make_remember_node,
    memory_namespace,
    rank_memories,
)
from durable_graph.graphs.models import load_model
from durable_graph.graphs.nodes import (
    make_evaluate_node,
    make_plan_node,
    make_tool_node,
    pending_tool_calls,
    route_after_evaluate,
    route_after_plan,
    route_after_tool,
)
from durable_graph.graphs.scripted import ScriptedModel
from durable_graph.graphs.state import AgentState, agent_input
from durable_graph.graphs.tools import demo_tools

__all__ = [
    "AgentState",
    "Decision",
    "Ranking",
    "ScriptedModel",
    "agent_input",
    "approval_request",
    "approve",
    "build_agent",
    "demo_tools",
    "edit",
    "load_model",
    "make_evaluate_node",
    "make_plan_node",
    "make_recall_node",
    "make_remember_node",
    "make_tool_node",
    "memory_namespace",
    "needs_approval",
    "parse_decision",
    "pending_tool_calls",
    "rank_memories",
    "reject",
    "requires_approval",
    "route_after_evaluate",
    "route_after_plan",
    "route_after_tool",
]
