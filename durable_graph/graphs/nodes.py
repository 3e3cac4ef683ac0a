"""The ``plan``, ``tool`` and ``evaluate`` nodes and the routing between them.

Each factory returns a runnable that works under both ``invoke`` and ``ainvoke``: the sync and the
async variants differ only in how they call the model or the tools; what goes in and what comes
out of a node is computed by the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp

from durable_graph.errors import BackendUnavailableError
from durable_graph.graphs.approval import REJECTED, Decision, ask_approval, needs_approval
from durable_graph.graphs.prompts import (
    current_run,
    evaluator_messages,
    parse_verdict,
    planner_messages,
    retry_feedback,
    run_call_ids,
    text_of,
)
from durable_graph.graphs.state import DEFAULT_MAX_STEPS

Node = RunnableLambda[Any, dict[str, Any]]


# ---- plan -------------------------------------------------------------------------------------


def make_plan_node(
    model: BaseChatModel, tools: Sequence[BaseTool] = (), *, max_steps: int = DEFAULT_MAX_STEPS
) -> Node:
    """The ``plan`` node: the model, with ``tools`` bound, proposes tool calls or answers.

    Each run is one step. It also records the step limit in force, the lower of the thread's
    ``max_steps`` and this ``max_steps``.
    """
    bound = model.bind_tools(list(tools)) if tools else model

    def plan(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return _planned(state, bound.invoke(planner_messages(state), config), max_steps)

    async def aplan(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return _planned(state, await bound.ainvoke(planner_messages(state), config), max_steps)

    return RunnableLambda(plan, afunc=aplan, name="plan")


def _planned(state: dict[str, Any], reply: Any, max_steps: int) -> dict[str, Any]:
    if not isinstance(reply, AIMessage):
        raise TypeError(f"the planner model must return an AIMessage, got {type(reply).__name__}")
    steps = [f"call {c['name']}({c['args']})" for c in reply.tool_calls] or ["answer the task"]
    return {
        "messages": [reply],
        "plan": steps,
        "step": state.get("step", 0) + 1,
        "max_steps": min(state.get("max_steps") or max_steps, max_steps),
    }


# ---- tool -------------------------------------------------------------------------------------


def make_tool_node(tools: Sequence[BaseTool]) -> Node:
    """The ``tool`` node: runs the tool calls of the latest model turn.

    Calls to tools marked ``requires_approval`` first pause the graph with ``interrupt()`` (payload
    from ``approval_request``); tools run only once every call of the turn has its decision, so a
    resumed node never runs a tool twice on account of a later approval. Failing tools produce an
    error ``ToolMessage`` for the model instead of failing the graph.
    """
    by_name = {t.name: t for t in tools}

    def tool(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        outcomes = [
            _run_decided(by_name, call, decision, config) for call, decision in _decide(by_name, state)
        ]
        return _tool_update(outcomes)

    async def atool(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        outcomes = [await _arun_decided(by_name, call, d, config) for call, d in _decide(by_name, state)]
        return _tool_update(outcomes)

    return RunnableLambda(tool, afunc=atool, name="tool")


Outcome = tuple[ToolCall, ToolMessage, Literal["ok", "error", "rejected"]]


def _decide(by_name: dict[str, BaseTool], state: dict[str, Any]) -> list[tuple[ToolCall, Decision]]:
    """The pending tool calls with their human decision (interrupting for any still missing)."""
    decided = []
    for call in pending_tool_calls(state.get("messages", [])):
        tool = by_name.get(call["name"])
        decision = Decision("approve")
        if tool is not None and needs_approval(tool):
            decision = ask_approval(tool, call["args"], call["id"])
        decided.append((call, decision))
    return decided


def _run_decided(
    by_name: dict[str, BaseTool], call: ToolCall, d: Decision, config: RunnableConfig
) -> Outcome:
    call, early = _prepare(by_name, call, d)
    if early is not None:
        return early
    try:
        return _finish(call, by_name[call["name"]].invoke(call, config))
    except (GraphBubbleUp, BackendUnavailableError):
        raise  # an interrupt, or storage the run cannot go on without: not the model's business
    except Exception as exc:
        return _failed(call, exc)


async def _arun_decided(
    by_name: dict[str, BaseTool], call: ToolCall, d: Decision, config: RunnableConfig
) -> Outcome:
    call, early = _prepare(by_name, call, d)
    if early is not None:
        return early
    try:
        return _finish(call, await by_name[call["name"]].ainvoke(call, config))
    except (GraphBubbleUp, BackendUnavailableError):
        raise  # an interrupt, or storage the run cannot go on without: not the model's business
    except Exception as exc:
        return _failed(call, exc)


def _prepare(by_name: dict[str, BaseTool], call: ToolCall, d: Decision) -> tuple[ToolCall, Outcome | None]:
    """The call to run (with edited args), or the outcome when it must not run."""
    if call["name"] not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        return call, _failed(call, LookupError(f"unknown tool {call['name']!r}; available tools: {known}"))
    if d.action == "reject":
        message = ToolMessage(
            f"{REJECTED}: {d.reason}", tool_call_id=call["id"], name=call["name"], status="error"
        )
        return call, (call, message, "rejected")
    if d.action == "edit" and d.args is not None:
        call = ToolCall(name=call["name"], args=d.args, id=call["id"], type="tool_call")
    return call, None


def _finish(call: ToolCall, result: Any) -> Outcome:
    if isinstance(result, ToolMessage):
        message = result
    else:
        message = ToolMessage(str(result), tool_call_id=call["id"], name=call["name"])
    return call, message, "error" if message.status == "error" else "ok"


def _failed(call: ToolCall, exc: BaseException) -> Outcome:
    text = f"{type(exc).__name__}: {exc}"
    return call, ToolMessage(text, tool_call_id=call["id"], name=call["name"], status="error"), "error"


def _tool_update(outcomes: list[Outcome]) -> dict[str, Any]:
    results = [
        {"tool": c["name"], "args": c["args"], "output": text_of(m), "call_id": c["id"], "status": status}
        for c, m, status in outcomes
    ]
    return {"messages": [m for _, m, _ in outcomes], "tool_results": results}


def pending_tool_calls(messages: Sequence[BaseMessage]) -> list[ToolCall]:
    """The tool calls of the latest model turn that have no ``ToolMessage`` yet."""
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    if last is None:
        return []
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    return [c for c in last.tool_calls if c["id"] not in answered]


# ---- evaluate ---------------------------------------------------------------------------------


def make_evaluate_node(model: BaseChatModel) -> Node:
    """The ``evaluate`` node: the model judges the latest answer.

    "done" sets ``final_answer``; "retry" sends the reason back to the planner, unless the step
    limit is reached, which ends the run with verdict "stopped" and a reason saying so.
    """

    def evaluate(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        answer, request = _evaluation_request(state)
        if request is None:
            return _stopped_without_answer(state)
        return _judged(state, answer, text_of(model.invoke(request, config)))

    async def aevaluate(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        answer, request = _evaluation_request(state)
        if request is None:
            return _stopped_without_answer(state)
        return _judged(state, answer, text_of(await model.ainvoke(request, config)))

    return RunnableLambda(evaluate, afunc=aevaluate, name="evaluate")


def _evaluation_request(state: dict[str, Any]) -> tuple[str, list | None]:
    messages = state.get("messages", [])
    last = messages[-1] if messages else None
    if not isinstance(last, AIMessage) or last.tool_calls:
        return "", None
    answer = text_of(last)
    ids = run_call_ids(messages)
    results = [r for r in state.get("tool_results", []) if r.get("call_id") in ids]
    return answer, evaluator_messages(state.get("task", ""), answer, results, state.get("memories") or [])


def _judged(state: dict[str, Any], answer: str, reply: str) -> dict[str, Any]:
    verdict = parse_verdict(reply)
    if verdict["verdict"] == "done":
        return {"evaluation": verdict, "final_answer": answer}
    step, limit = state.get("step", 0), state.get("max_steps", DEFAULT_MAX_STEPS)
    if step >= limit:
        reason = f"reached max_steps={limit} without an accepted answer; last evaluation: {verdict['reason']}"
        return {"evaluation": {"verdict": "stopped", "reason": reason}}
    return {"evaluation": verdict, "messages": [retry_feedback(verdict["reason"])]}


def _stopped_without_answer(state: dict[str, Any]) -> dict[str, Any]:
    limit = state.get("max_steps", DEFAULT_MAX_STEPS)
    reason = f"reached max_steps={limit} before the model gave an answer"
    return {"evaluation": {"verdict": "stopped", "reason": reason}}


# ---- routing ----------------------------------------------------------------------------------


def route_after_plan(state: dict[str, Any]) -> Literal["tool", "evaluate"]:
    """To ``tool`` when the model asked for tool calls, else to ``evaluate`` its answer."""
    return "tool" if pending_tool_calls(current_run(state.get("messages", []))) else "evaluate"


def route_after_tool(state: dict[str, Any]) -> Literal["plan", "evaluate"]:
    """Back to ``plan`` with the results, or to ``evaluate`` (which stops) once no step is left."""
    return "plan" if state.get("step", 0) < state.get("max_steps", DEFAULT_MAX_STEPS) else "evaluate"


def route_after_evaluate(state: dict[str, Any]) -> Literal["plan", "done", "stopped"]:
    """ "plan" to try again, "done" for an accepted answer, "stopped" at the step limit.

    Map them to nodes with ``add_conditional_edges("evaluate", route_after_evaluate,
    {"plan": "plan", "done": END, "stopped": END})``.
    """
    verdict = (state.get("evaluation") or {}).get("verdict")
    if verdict == "done":
        return "done"
    return "plan" if verdict == "retry" else "stopped"
