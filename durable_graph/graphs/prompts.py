"""What the nodes say to the model, and how they read its conversation back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

PLANNER_PROMPT = (
    "You are a careful agent. Work on the task below: call the available tools to get facts you do "
    "not have, one step at a time. When the tool results or your memories answer the task, reply "
    "with the final answer and no tool calls, quoting the results you rely on."
)
MEMORY_HEADER = "Memories from earlier runs (most relevant first):"
EVALUATOR_PROMPT = (
    "You judge whether an agent's answer accomplishes its task. The user message is JSON with "
    '"task", "answer", "tool_results" and "memories". Reply with only a JSON object '
    '{"verdict": "done" | "retry", "reason": "..."}: "done" when the answer accomplishes the task and '
    'is supported by the tool results or memories, else "retry" with a reason saying what is missing.'
)
EVALUATOR_NAME = "evaluator"


def planner_messages(state: dict[str, Any]) -> list[BaseMessage]:
    """The system prompt (task and recalled memories) followed by the conversation so far."""
    lines = [PLANNER_PROMPT, "", f"Task: {state.get('task', '')}"]
    memories = state.get("memories") or []
    if memories:
        lines += ["", MEMORY_HEADER, *(f"- {one_line(m['text'])}" for m in memories)]
    return [SystemMessage(content="\n".join(lines)), *state.get("messages", [])]


def memory_lines(system_prompt: str) -> list[str]:
    """The memories listed in a planner system prompt (inverse of ``planner_messages``)."""
    if MEMORY_HEADER not in system_prompt:
        return []
    section = system_prompt.split(MEMORY_HEADER, 1)[1].splitlines()
    return [line[2:] for line in section if line.startswith("- ")]


def evaluator_messages(task: str, answer: str, tool_results: list[dict], memories: list[dict]) -> list:
    """The request asking the model to judge ``answer``."""
    request = {
        "task": task,
        "answer": answer,
        "tool_results": [{k: r.get(k) for k in ("tool", "args", "status", "output")} for r in tool_results],
        "memories": [m["text"] for m in memories],
    }
    return [SystemMessage(content=EVALUATOR_PROMPT), HumanMessage(content=json.dumps(request, indent=1))]


def is_evaluator_request(messages: Sequence[BaseMessage]) -> bool:
    return (
        bool(messages) and isinstance(messages[0], SystemMessage) and messages[0].content == EVALUATOR_PROMPT
    )


def retry_feedback(reason: str) -> HumanMessage:
    """The message that sends the evaluator's objection back to the planner."""
    return HumanMessage(content=f"Not done yet: {reason}. Try again.", name=EVALUATOR_NAME)


def current_run(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages since the user's latest task message (evaluator feedback does not count)."""
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if isinstance(msg, HumanMessage) and msg.name != EVALUATOR_NAME:
            return list(messages[i:])
    return list(messages)


def run_call_ids(messages: Sequence[BaseMessage]) -> set[str]:
    """The ids of the tool calls answered in the current run."""
    return {m.tool_call_id for m in current_run(messages) if isinstance(m, ToolMessage)}


def text_of(message: BaseMessage) -> str:
    """A message's content as plain text (content blocks joined)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [c if isinstance(c, str) else str(c.get("text", "")) for c in content]
    return "".join(parts)


def one_line(text: str) -> str:
    return " ".join(text.split())


def parse_verdict(reply: str) -> dict[str, str]:
    """``{"verdict": "done" | "retry", "reason": ...}`` from an evaluator reply.

    A reply that is not such JSON counts as "retry", with the reply quoted in the reason, so a
    confused evaluator costs a step rather than ending the run with an unchecked answer.
    """
    start, end = reply.find("{"), reply.rfind("}")
    if start != -1 and end > start:
        try:
            data = json.loads(reply[start : end + 1])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data.get("verdict") in ("done", "retry"):
            return {"verdict": data["verdict"], "reason": str(data.get("reason") or "")}
    return {"verdict": "retry", "reason": f"the evaluator's reply was not a verdict: {reply[:200]!r}"}
