"""Naming a tool call so that a re-run of its node finds it again: ``ToolCallKey`` and ``call_key``."""

from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

_TASK_ID_KEY = "__pregel_task_id"  # langgraph._internal._constants.CONFIG_KEY_TASK_ID


@dataclass(frozen=True)
class ToolCallKey:
    """Where a tool call happened: one call of one task of one thread."""

    thread_id: str
    checkpoint_ns: str
    task_id: str
    call_id: str


current_call: ContextVar[ToolCallKey | None] = ContextVar("durable_graph_tool_call", default=None)


def idempotency_key() -> str | None:
    """Inside a durable tool: a string naming this call, the same every time the call is retried
    after a crash. Pass it to the system the tool acts on (as an idempotency key) to make the effect
    itself happen once, closing the window before the result is recorded. ``None`` elsewhere."""
    key = current_call.get()
    if key is None:
        return None
    text = "\0".join((key.thread_id, key.checkpoint_ns, key.task_id, key.call_id))
    return hashlib.sha256(text.encode()).hexdigest()


def call_key(config: RunnableConfig, tool_name: str, tool_input: Any) -> ToolCallKey | None:
    """The key of a tool call made with ``config``; ``None`` outside a graph run with a thread."""
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    task_id = configurable.get(_TASK_ID_KEY)
    if thread_id is None or task_id is None:
        return None
    if isinstance(tool_input, dict) and tool_input.get("type") == "tool_call" and tool_input.get("id"):
        call_id = "id:" + str(tool_input["id"])
    else:
        args = tool_input.get("args") if isinstance(tool_input, dict) and "args" in tool_input else tool_input
        text = json.dumps([tool_name, args], sort_keys=True, default=repr)
        call_id = "args:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return ToolCallKey(str(thread_id), str(configurable.get("checkpoint_ns") or ""), str(task_id), call_id)
