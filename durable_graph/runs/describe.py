"""Plain descriptions of what a thread holds, for every front end: JSON types, one-line summaries.

``jsonable`` turns state values (messages, interrupts, models, errors) into JSON types;
``describe_update`` says in one line what a node changed; ``message_line`` shows one message.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

WIDTH = 110


def short(value: Any, limit: int = WIDTH) -> str:
    """``value`` as one line of at most ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jsonable(value: Any) -> Any:
    """``value`` made of JSON types only: messages, interrupts, models and errors become dicts/strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, BaseMessage):
        data: dict[str, Any] = {"type": value.type, "content": jsonable(value.content)}
        for key in ("name", "tool_call_id"):
            if getattr(value, key, None):
                data[key] = getattr(value, key)
        if getattr(value, "tool_calls", None):
            data["tool_calls"] = [
                {"name": c["name"], "args": jsonable(c["args"]), "id": c.get("id")}
                for c in value.tool_calls  # type: ignore[attr-defined]
            ]
        return data
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"))
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if hasattr(value, "value") and hasattr(value, "id"):  # langgraph Interrupt
        return {"id": value.id, "value": jsonable(value.value)}
    return str(value)


def describe_update(update: Any) -> str:
    """What a node changed, in one line."""
    if not isinstance(update, dict) or not update:
        return "no changes"
    parts: list[str] = []
    for key, value in update.items():
        if key == "task" and value:
            parts.append(f"task: {value}")
        elif key == "plan" and value:
            parts.append("plan: " + "; ".join(map(str, value)))
        elif key == "tool_results" and value:
            parts += [
                f"{r.get('tool')}({short(r.get('args'), 60)}) → {short(r.get('output'), 80)}"
                + ("" if r.get("status") in (None, "ok") else f" [{r.get('status')}]")
                for r in value
                if isinstance(r, dict)
            ]
        elif key == "evaluation" and isinstance(value, dict):
            parts.append(f"{value.get('verdict')}: {value.get('reason', '')}")
        elif key == "final_answer" and value:
            parts.append(f"answer: {value}")
        elif key == "memories":
            parts.append(f"{len(value or [])} memories")
        elif key == "messages":
            for message in value if isinstance(value, list) else [value]:
                calls = getattr(message, "tool_calls", None)
                if calls:
                    parts.append("calls " + ", ".join(f"{c['name']}({short(c['args'], 60)})" for c in calls))
    if any(p.startswith("calls ") for p in parts):  # the plan only repeats the calls
        parts = [p for p in parts if not p.startswith("plan: ")]
    return short(" | ".join(parts) if parts else "updated " + ", ".join(update), 160)


def message_line(message: Any) -> str:
    """A message as ``type: text`` on one line, with the tool calls it makes."""
    body = jsonable(message)
    if not isinstance(body, dict):
        return short(body, 140)
    text = str(body.get("content") or "")
    calls = body.get("tool_calls") or []
    if calls:
        text += (
            (" " if text else "")
            + "calls "
            + ", ".join(f"{c['name']}({short(c['args'], 60)})" for c in calls)
        )
    return f"{body.get('type')}: {short(text, 140)}"
