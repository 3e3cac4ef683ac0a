"""Human approval of tool calls: marking tools, the interrupt payload and the resume values.

A tool marked with ``requires_approval`` makes the ``tool`` node pause the graph with LangGraph's
``interrupt()`` before running it. The pause is an ordinary checkpointed interrupt, so it survives
process exit and any process can answer it with ``graph.invoke(approve(), config)``,
``edit({...})`` or ``reject("why")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain_core.tools import BaseTool
from langgraph.types import Command, interrupt
from pydantic import AfterValidator, BaseModel, ValidationError, WithJsonSchema

from durable_graph.errors import InvalidResumeError

APPROVAL_KEY = "requires_approval"
ACTIONS = ("approve", "edit", "reject")
REJECTED = "The reviewer rejected this call"
_EXAMPLE = "{'action': 'approve'}, {'action': 'edit', 'args': {...}} or {'action': 'reject', 'reason': '...'}"


def requires_approval(tool: BaseTool) -> BaseTool:
    """Mark ``tool`` so that every call to it waits for a human decision; returns the same tool."""
    tool.metadata = {**(tool.metadata or {}), APPROVAL_KEY: True}
    return tool


def needs_approval(tool: BaseTool) -> bool:
    """Whether calls to ``tool`` wait for a human decision."""
    return bool((tool.metadata or {}).get(APPROVAL_KEY))


def approve() -> Command:
    """Resume value: run the pending tool call as proposed."""
    return Command(resume={"action": "approve"})


def edit(args: dict[str, Any]) -> Command:
    """Resume value: run the pending tool call with ``args`` instead of the proposed ones."""
    return Command(resume={"action": "edit", "args": args})


def reject(reason: str) -> Command:
    """Resume value: do not run the pending tool call; the model is told ``reason``."""
    return Command(resume={"action": "reject", "reason": reason})


@dataclass(frozen=True)
class Decision:
    """A parsed resume value. ``args`` is set for "edit", ``reason`` for "reject"."""

    action: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None
    reason: str | None = None


def approval_request(tool_name: str, args: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    """The JSON-serializable payload of the approval interrupt."""
    return {
        "type": "approval",
        "tool": tool_name,
        "args": args,
        "call_id": call_id,
        "message": f"The agent wants to call {tool_name} with {args}. Approve, edit the args, or reject.",
    }


RESUME_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"enum": list(ACTIONS)},
        "args": {"type": "object", "description": "for 'edit': the arguments to run the tool with"},
        "reason": {"type": "string", "description": "for 'reject': why, told to the model"},
    },
    "required": ["action"],
}


def ask_approval(tool: BaseTool, args: dict[str, Any], call_id: str | None) -> Decision:
    """Pause the graph until a human decides on this call; returns the decision once resumed.

    A malformed resume value raises ``InvalidResumeError`` and is not recorded, so the same
    interrupt can be answered again with a correct value.
    """
    schema = Annotated[
        Any, AfterValidator(lambda value: parse_decision(value, tool)), WithJsonSchema(RESUME_JSON_SCHEMA)
    ]
    payload = approval_request(tool.name, args, call_id)
    try:
        decision: Decision = interrupt(payload, response_schema=schema)  # type: ignore[arg-type]
    except ValidationError as exc:
        causes = [e.get("ctx", {}).get("error") for e in exc.errors()]
        ours = [c for c in causes if isinstance(c, InvalidResumeError)]
        raise (ours[0] if ours else InvalidResumeError(str(exc))) from None
    return decision


def parse_decision(value: Any, tool: BaseTool | None = None) -> Decision:
    """Turn a resume value into a ``Decision`` or raise ``InvalidResumeError`` naming what is wrong.

    ``value`` is the dict given to ``Command(resume=...)`` (a ``Command`` itself is accepted too).
    With ``tool``, edited args are also checked against the tool's argument schema.
    """
    if isinstance(value, Command):
        value = value.resume
    if isinstance(value, Decision):
        value = {k: v for k, v in vars(value).items() if v is not None}
    if not isinstance(value, dict):
        raise InvalidResumeError(f"resume value must be a dict such as {_EXAMPLE}; got {value!r}")
    action = value.get("action")
    if action not in ACTIONS:
        raise InvalidResumeError(
            f"unknown action {action!r} in resume value {value!r}; expected one of {ACTIONS}"
        )
    allowed = {"approve": {"action"}, "edit": {"action", "args"}, "reject": {"action", "reason"}}[action]
    unexpected = sorted(set(value) - allowed)
    if unexpected:
        raise InvalidResumeError(f"{action!r} takes no {', '.join(map(repr, unexpected))} (got {value!r})")
    if action == "edit":
        args = value.get("args")
        if not isinstance(args, dict):
            raise InvalidResumeError(f"'edit' needs 'args' as a dict of the tool's arguments; got {args!r}")
        if tool is not None:
            _check_args(tool, args)
        return Decision("edit", args=args)
    if action == "reject":
        reason = value.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidResumeError(f"'reject' needs a non-empty 'reason' string; got {reason!r}")
        return Decision("reject", reason=reason)
    return Decision("approve")


def _check_args(tool: BaseTool, args: dict[str, Any]) -> None:
    """Raise ``InvalidResumeError`` unless ``args`` fit ``tool``'s argument schema."""
    unknown = sorted(set(args) - set(tool.args))
    if unknown:
        raise InvalidResumeError(
            f"edited args for {tool.name!r} have unknown names {unknown}; it takes {sorted(tool.args)}"
        )
    schema = tool.args_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            schema.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidResumeError(
                f"edited args for {tool.name!r} do not fit its schema: {problems}"
            ) from None
