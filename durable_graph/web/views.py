"""What the inbox shows, as plain JSON-ready data: the pages render it and the API returns it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from durable_graph.errors import DurableGraphError
from durable_graph.runs.agent import build_graph
from durable_graph.runs.describe import jsonable
from durable_graph.runs.history import thread_history
from durable_graph.runs.lease import is_active
from durable_graph.runs.runner import outcome
from durable_graph.runs.status import STATUSES, ThreadSummary, latest, list_threads, saved_settings, status_of
from durable_graph.web.decisions import Decisions

PAGE_SIZE = 20


class BadQueryError(DurableGraphError, ValueError):
    """A query parameter of a page or API call is not one the inbox understands."""


@dataclass
class Page:
    """One page of a list, newest first."""

    items: list[dict[str, Any]]
    page: int
    pages: int
    total: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def paged(items: list[dict[str, Any]], page: int) -> Page:
    if page < 1:
        raise BadQueryError(f"page must be 1 or more, not {page}")
    pages = max(1, math.ceil(len(items) / PAGE_SIZE))
    start = (page - 1) * PAGE_SIZE
    return Page(items[start : start + PAGE_SIZE], page, pages, len(items))


def waited(since: str, now: datetime | None = None) -> tuple[float | None, str]:
    """Seconds since the ISO time ``since`` and the same as a short text ("5 min", "2 h 10 min")."""
    try:
        then = datetime.fromisoformat(since)
    except ValueError:
        return None, "?"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0.0, ((now or datetime.now(UTC)) - then).total_seconds())
    minutes = int(seconds // 60)
    if minutes < 1:
        return seconds, f"{int(seconds)} s"
    if minutes < 60:
        return seconds, f"{minutes} min"
    if minutes < 48 * 60:
        return seconds, f"{minutes // 60} h {minutes % 60} min"
    return seconds, f"{minutes // (24 * 60)} d"


def is_approval(interrupt: Any) -> bool:
    """Whether an interrupt's value asks for a decision on a tool call (``approval_request``)."""
    return isinstance(interrupt, dict) and interrupt.get("type") == "approval"


def approvals_of(interrupts: list[Any]) -> list[dict[str, Any]]:
    return [i for i in interrupts if is_approval(i)]


def inbox_page(saver: BaseCheckpointSaver, page: int = 1) -> Page:
    """Every thread waiting for a decision on a tool call, the longest-waiting last."""
    items = []
    for summary in list_threads(saver):
        for approval in approvals_of(summary.interrupts) if summary.status == "interrupted" else []:
            seconds, text = waited(summary.updated)
            items.append(
                {
                    "thread": summary.thread_id,
                    "task": summary.task,
                    "tool": approval.get("tool"),
                    "args": jsonable(approval.get("args")),
                    "message": approval.get("message"),
                    "waiting_since": summary.updated,
                    "waited_seconds": seconds,
                    "waited": text,
                }
            )
    return paged(items, page)


def threads_page(
    saver: BaseCheckpointSaver, url: str, decisions: Decisions, status: str | None = None, page: int = 1
) -> Page:
    """All threads (or those with ``status``), most recently updated first."""
    if status is not None and status not in STATUSES:
        raise BadQueryError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    summaries = [s for s in list_threads(saver) if status is None or s.status == status]
    result = paged([thread_item(s) for s in summaries], page)
    for item in result.items:  # probing the lease costs a connection: only for the page shown
        if item["status"] == "running":
            item["active"] = decisions.running(item["thread"]) or is_active(url, item["thread"])
    return result


def thread_item(summary: ThreadSummary) -> dict[str, Any]:
    seconds, text = waited(summary.updated)
    return {
        "thread": summary.thread_id,
        "status": summary.status,
        "step": summary.step,
        "task": summary.task,
        "updated": summary.updated,
        "age": text,
        "next": summary.next,
        "error": summary.error,
        "waiting_for": [a.get("tool") for a in approvals_of(summary.interrupts)],
        "active": None,
    }


def thread_view(saver: BaseCheckpointSaver, url: str, decisions: Decisions, thread_id: str) -> dict[str, Any]:
    """A thread: status, task, messages, the timeline of its checkpoints, the pending decision and
    the progress of the last decision this server carries out; ``ThreadNotFoundError`` if unknown."""
    settings = saved_settings(saver, thread_id)
    graph = build_graph(settings, saver, inspect_only=True)
    result = outcome(graph, thread_id)
    values = result.values
    state = progress(url, decisions, thread_id, result.status)
    approval = None
    for interrupt_id, value in zip(result.interrupt_ids, result.interrupts, strict=True):
        if is_approval(value) and not state["active"]:  # else it is being answered
            approval = {
                "interrupt_id": interrupt_id,
                "tool": value.get("tool"),
                "args": jsonable(value.get("args")),
                "message": value.get("message"),
            }
            break
    return {
        "thread": thread_id,
        **state,
        "step": values.get("step"),
        "task": values.get("task"),
        "plan": jsonable(values.get("plan") or []),
        "final_answer": values.get("final_answer"),
        "error": result.error,
        "failed_node": result.failed_node,
        "next": result.next,
        "approval": approval,
        "other_interrupts": [jsonable(i) for i in result.interrupts if not is_approval(i)],
        "messages": jsonable(values.get("messages") or []),
        "timeline": jsonable(thread_history(graph, thread_id)),
        "settings": asdict(settings),
    }


def progress(url: str, decisions: Decisions, thread_id: str, status: str) -> dict[str, Any]:
    """Where a thread's run stands: its status, whether a runner is at work on it, and the last
    decision this server carried out on it with the nodes run since.

    A thread whose approval is being answered still reads as interrupted in its checkpoints until
    the tool's node finishes; while a runner holds it, it is reported as running."""
    run = decisions.latest(thread_id)
    active = decisions.running(thread_id) or (
        status in ("running", "interrupted") and is_active(url, thread_id)
    )
    return {
        "status": "running" if active else status,
        "active": active,
        "run": run.as_json() if run is not None else None,
    }


def thread_progress(
    saver: BaseCheckpointSaver, url: str, decisions: Decisions, thread_id: str
) -> dict[str, Any]:
    """``progress`` read from the thread's latest checkpoint only: cheap enough to poll."""
    return {
        "thread": thread_id,
        **progress(url, decisions, thread_id, status_of(latest(saver, thread_id))[0]),
    }
