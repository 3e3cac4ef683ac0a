"""The inbox as JSON under ``/api``: the same data as the pages, and decisions for scripts."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict

from durable_graph.errors import ThreadBusyError
from durable_graph.runs.runner import ThreadStateError
from durable_graph.web.decisions import refusal
from durable_graph.web.state import PageNumber, inbox_of
from durable_graph.web.views import inbox_page, thread_progress, thread_view, threads_page

router = APIRouter(prefix="/api")


class DecisionBody(BaseModel):
    """A decision on the approval a thread waits for (the resume value of ``durable-graph approve``,
    ``edit`` or ``reject``), optionally naming the approval it answers."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None
    """For ``edit``: the tool's arguments, checked against its schema."""
    reason: str | None = None
    """For ``reject``: why; the agent is told."""
    interrupt_id: str | None = None
    """The approval this answers (``approval.interrupt_id`` of the thread); another one waiting by
    now makes the decision fail with 409 instead of answering a request nobody saw."""


@router.get("/inbox")
def inbox(request: Request, page: PageNumber = 1) -> dict[str, Any]:
    """Threads waiting for a decision, newest first, 20 a page."""
    return inbox_page(inbox_of(request).saver, page).as_json()


@router.get("/threads")
def threads(request: Request, status: str | None = None, page: PageNumber = 1) -> dict[str, Any]:
    """All threads (or those with ``status``: running, interrupted, done, failed), newest first."""
    state = inbox_of(request)
    return threads_page(state.saver, state.url, state.decisions, status, page).as_json()


@router.get("/threads/{thread_id}")
def thread(request: Request, thread_id: str) -> dict[str, Any]:
    """A thread: status, messages, timeline, pending approval, the progress of the last decision."""
    state = inbox_of(request)
    return thread_view(state.saver, state.url, state.decisions, thread_id)


@router.get("/threads/{thread_id}/progress")
def progress(request: Request, thread_id: str) -> dict[str, Any]:
    """Whether a run of the thread is going on, and the nodes the last decision's run has finished."""
    state = inbox_of(request)
    return thread_progress(state.saver, state.url, state.decisions, thread_id)


@router.post("/threads/{thread_id}/decision", status_code=202)
def decide(request: Request, thread_id: str, body: DecisionBody) -> Response:
    """Answer the pending approval; 202 once the run goes on in the background (follow it with
    ``progress``), 409 when the thread is busy or was decided already, 422 for a bad decision."""
    state = inbox_of(request)
    state.guard.check_change(request, None)
    value = body.model_dump(exclude={"interrupt_id"}, exclude_none=True)
    try:
        run = state.decisions.decide(thread_id, Command(resume=value), interrupt_id=body.interrupt_id)
    except (ThreadBusyError, ThreadStateError) as exc:
        return JSONResponse({"error": refusal(exc)}, status_code=409)
    return JSONResponse(
        {
            "thread": thread_id,
            "run": run.as_json(),
            "progress": f"/api/threads/{quote(thread_id, safe='')}/progress",
        },
        status_code=202,
    )


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    """The API's OpenAPI schema."""
    schema: dict[str, Any] = request.app.openapi()
    return schema
