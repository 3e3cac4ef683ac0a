"""How the CLI shows things: one line per finished node, thread tables, JSON for scripts."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from durable_graph.runs.describe import describe_update, jsonable, short
from durable_graph.runs.runner import NodeEvent, Outcome
from durable_graph.runs.status import ThreadSummary
from durable_graph.urls import default_url

STATUS_STYLE = {"running": "cyan", "interrupted": "yellow", "done": "green", "failed": "red"}


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr) that never hard-wraps long lines."""
    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False)


def emit_line(text: str) -> None:
    """Write one plain line to stdout (no markup, no wrapping) and flush it at once."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json(value: Any) -> None:
    """Write ``value`` as one line of JSON to stdout."""
    emit_line(dumps(value))


# -- node events -------------------------------------------------------------------------------


def print_event(out: Console, event: NodeEvent, step: int | None = None) -> None:
    if event.interrupts:
        return  # the pending approval is shown once the run has stopped
    update = event.update if isinstance(event.update, dict) else {}
    at = update.get("step", step)
    label = f"[dim]step {at}[/dim] " if isinstance(at, int) else ""
    out.print(f"[green]✓[/green] {label}[bold]{escape(event.node)}[/bold]  {escape(describe_update(update))}")
    out.file.flush()


def event_json(event: NodeEvent) -> dict[str, Any]:
    if event.interrupts:
        return {"event": "interrupt", "interrupts": event.interrupts}
    return {"event": "node", "node": event.node, "update": event.update}


# -- outcomes ----------------------------------------------------------------------------------


def url_flag(url: str) -> str:
    """``--url URL`` when the URL is not the default one, so printed commands work as typed."""
    return "" if url == default_url() else f" --url {shlex.quote(url)}"


def approval_commands(thread_id: str, payload: dict[str, Any], url: str) -> dict[str, str]:
    flag = url_flag(url)
    args = json.dumps(jsonable(payload.get("args") or {}), ensure_ascii=False)
    return {
        "approve": f"durable-graph approve {thread_id}{flag}",
        "edit": f"durable-graph edit {thread_id} --args {shlex.quote(args)}{flag}",
        "reject": f"durable-graph reject {thread_id} --reason 'why not'{flag}",
    }


def outcome_json(result: Outcome, url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "thread": result.thread_id,
        "status": result.status,
        "step": result.values.get("step"),
        "next": result.next,
        "final_answer": result.values.get("final_answer"),
        "interrupts": result.interrupts,
        "error": result.error,
        "failed_node": result.failed_node,
    }
    approvals = [i for i in result.interrupts if isinstance(i, dict) and i.get("type") == "approval"]
    if approvals:
        data["commands"] = approval_commands(result.thread_id, approvals[0], url)
    return data


def print_outcome(out: Console, result: Outcome, url: str) -> None:
    tid = result.thread_id
    flag = url_flag(url)
    if result.status == "done":
        answer = result.values.get("final_answer")
        out.print(f"[green bold]done[/green bold] thread {escape(tid)}")
        out.print(f"final answer: {escape(str(answer))}" if answer else "finished without a final answer")
    elif result.status == "interrupted":
        for payload in result.interrupts:
            if isinstance(payload, dict) and payload.get("type") == "approval":
                print_approval(out, tid, payload, url)
            else:
                out.print(f"[yellow]waiting for input:[/yellow] {escape(short(payload))}")
    elif result.status == "failed":
        node, error = escape(str(result.failed_node)), escape(str(result.error))
        out.print(f"[red bold]failed[/red bold] in node {node}: {error}")
        out.print(f"retry the failed node with: durable-graph resume {tid}{flag}")
    else:
        out.print(f"[cyan]stopped before {', '.join(result.next)}[/cyan]")
        out.print(f"continue with: durable-graph resume {tid}{flag}")


def print_approval(out: Console, thread_id: str, payload: dict[str, Any], url: str) -> None:
    out.print(
        f"[yellow bold]waiting for approval[/yellow bold]: {escape(str(payload.get('tool')))}"
        f"({escape(short(payload.get('args'), 200))})"
    )
    for name, command in approval_commands(thread_id, payload, url).items():
        out.print(f"  {name:8} {escape(command)}")


# -- tables ------------------------------------------------------------------------------------


def columns(rows: list[list[str]]) -> list[str]:
    """Rows as lines of left-aligned columns (plain text: ids are never cut or wrapped)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def threads_lines(summaries: list[ThreadSummary]) -> list[str]:
    rows = [["thread", "status", "step", "updated", "task"]]
    rows += [
        [
            s.thread_id,
            _status_text(s),
            "" if s.step is None else str(s.step),
            s.updated[:19].replace("T", " "),
            short(s.task or "", 60),
        ]
        for s in summaries
    ]
    return columns(rows)


def _status_text(summary: ThreadSummary) -> str:
    if summary.status == "running" and summary.active is False:
        return "running (stopped: resume it)"
    return summary.status
