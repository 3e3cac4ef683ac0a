"""The state of the agent graph and the input that starts a thread."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph.message import add_messages

DEFAULT_MAX_STEPS = 8
DEFAULT_USER_ID = "default"


class AgentState(TypedDict, total=False):
    """What the agent knows at any point; checkpointed after every node.

    - ``task``: what the user asked for.
    - ``plan``: the steps the model proposed in its latest turn.
    - ``messages``: the conversation with the model (merged by ``add_messages``).
    - ``tool_results``: every tool call run so far, appended in order; each a dict with
      ``tool``, ``args``, ``output``, ``call_id`` and ``status`` ("ok", "error" or "rejected").
    - ``evaluation``: the latest judgement, ``{"verdict": "done" | "retry" | "stopped", "reason": ...}``.
    - ``step``: how many model turns ran; the run stops at ``max_steps``.
    - ``memories``: long-term memories recalled for the task (when the graph has a store).
    - ``final_answer``: the accepted answer, or None while there is none.
    - ``user_id``: whose long-term memory namespace to read and write.
    """

    task: str
    plan: list[str]
    messages: Annotated[list[AnyMessage], add_messages]
    tool_results: Annotated[list[dict[str, Any]], operator.add]
    evaluation: dict[str, Any] | None
    step: int
    max_steps: int
    memories: list[dict[str, Any]]
    final_answer: str | None
    user_id: str


def agent_input(task: str, *, max_steps: int = DEFAULT_MAX_STEPS, user_id: str = DEFAULT_USER_ID) -> dict:
    """The input for ``graph.invoke`` that starts a thread working on ``task``."""
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task must be a non-empty string, got {task!r}")
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")
    return {
        "task": task,
        "plan": [],
        "messages": [HumanMessage(content=task)],
        "evaluation": None,
        "step": 0,
        "max_steps": max_steps,
        "memories": [],
        "final_answer": None,
        "user_id": user_id,
    }
