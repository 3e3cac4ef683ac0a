"""The ``durable-graph`` commands that look at stored threads: threads, show, history, prune."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from durable_graph.cli import output
from durable_graph.cli.common import (
    EXIT_USAGE,
    JsonOption,
    ThreadArg,
    UrlOption,
    exit_codes,
    fail,
    open_saver,
    url_of,
)
from durable_graph.runs.agent import build_graph
from durable_graph.runs.describe import message_line, short
from durable_graph.runs.history import inspection_graph, thread_history
from durable_graph.runs.lease import is_active
from durable_graph.runs.placement import runner_of
from durable_graph.runs.runner import outcome
from durable_graph.runs.status import STATUSES, list_threads, older_than, parse_duration, saved_settings


@exit_codes
def threads(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only threads with this status: {', '.join(STATUSES)}.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List threads, most recently updated first, with their status (running, interrupted, done, failed)."""
    url = url_of(ctx, url)
    if status is not None and status not in STATUSES:
        raise fail(EXIT_USAGE, f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    with open_saver(url) as saver:
        summaries = [s for s in list_threads(saver) if status is None or s.status == status]
    for summary in summaries:
        if summary.status == "running":
            summary.active = is_active(url, summary.thread_id)
    out = output.console()
    if as_json:
        output.emit_json([s.as_json() for s in summaries])
    elif summaries:
        for line in output.threads_lines(summaries):
            output.emit_line(line)
    else:
        out.print("no threads" + (f" with status {status}" if status else ""))


@exit_codes
def show(
    ctx: typer.Context,
    thread_id: ThreadArg,
    messages: Annotated[
        int, typer.Option("--messages", min=0, help="How many of the last messages to show.")
    ] = 5,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Show a thread's state: task, step, plan, last messages, final answer and pending approval."""
    url = url_of(ctx, url)
    with open_saver(url) as saver:
        settings = saved_settings(saver, thread_id)
        result = outcome(build_graph(settings, saver, inspect_only=True), thread_id)
    runner = runner_of(url, thread_id)
    values = result.values
    data = {
        **output.outcome_json(result, url),
        "task": values.get("task"),
        "plan": values.get("plan"),
        "evaluation": values.get("evaluation"),
        "tool_results": values.get("tool_results", []),
        "messages": (values.get("messages") or [])[-messages:] if messages else [],
        "checkpoint_id": result.checkpoint_id,
        "settings": settings,
        "runner": runner.as_json(thread_id),
    }
    out = output.console()
    if as_json:
        output.emit_json(data)
        return
    style = output.STATUS_STYLE.get(result.status, "")
    status = f"[{style}]{result.status}[/{style}]"
    out.print(f"[bold]thread[/bold]  {escape(thread_id)}  {status}  step {values.get('step')}")
    out.print(f"[bold]task[/bold]    {escape(str(values.get('task')))}")
    out.print(f"[bold]runs[/bold]    {escape(runner.describe())}")
    for n, item in enumerate(values.get("plan") or [], 1):
        label = "[bold]plan[/bold]    " if n == 1 else "        "
        out.print(f"{label}{n}. {escape(short(item, 140))}")
    for message in data["messages"]:
        out.print(f"  [dim]{escape(message_line(message))}[/dim]")
    if values.get("final_answer"):
        out.print(f"[bold]final answer[/bold]  {escape(str(values['final_answer']))}")
    if result.status == "interrupted" or result.status == "failed":
        output.print_outcome(out, result, url)
    elif result.status == "running":
        out.print(
            f"next: {', '.join(result.next)} — if no process is running it, continue with: "
            f"durable-graph resume {thread_id}{output.url_flag(url)}"
        )


@exit_codes
def history(
    ctx: typer.Context,
    thread_id: ThreadArg,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the latest N checkpoints.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List a thread's checkpoints, oldest first: id, step, source, the node that wrote it, next nodes."""
    url = url_of(ctx, url)
    with open_saver(url) as saver:
        rows = thread_history(inspection_graph(saver, thread_id), thread_id, limit)
    if as_json:
        output.emit_json(rows)
        return
    table = [["checkpoint", "step", "source", "node", "next"]]
    table += [
        [r["checkpoint_id"], str(r["step"]), r["source"], r["node"] or "", ", ".join(r["next"])] for r in rows
    ]
    for line in output.columns(table):
        output.emit_line(line)
    output.emit_line(
        f"fork from any of them with: durable-graph fork {thread_id} --checkpoint ID{output.url_flag(url)}"
    )


@exit_codes
def prune(
    ctx: typer.Context,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            min=1,
            help="Keep only the latest N checkpoints of every thread and namespace (older history is "
            "dropped; the thread stays resumable).",
        ),
    ] = None,
    older_than_: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete threads whose latest checkpoint is older than this: 30m, 12h, 7d, 2w.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be deleted.")] = False,
    url: UrlOption = None,
) -> None:
    """Delete old checkpoints: whole threads --older-than a duration, and/or all but the latest N (--keep)."""
    url = url_of(ctx, url)
    if keep is None and older_than_ is None:
        raise fail(EXIT_USAGE, "say what to prune: --keep N and/or --older-than DURATION (e.g. 7d)")
    try:
        age = parse_duration(older_than_) if older_than_ is not None else None
    except ValueError as exc:
        raise fail(EXIT_USAGE, f"--older-than: {exc}") from None
    out = output.console()
    with open_saver(url) as saver:
        prune_keep = getattr(saver, "prune_keep", None)
        if keep is not None and keep != 1 and prune_keep is None:
            raise fail(
                EXIT_USAGE,
                f"--keep {keep}: this checkpointer ({type(saver).__name__}) can only keep the latest "
                "checkpoint of a thread; use --keep 1",
            )
        summaries = list_threads(saver)
        doomed = older_than(summaries, age) if age is not None else []
        kept = [s.thread_id for s in summaries if s.thread_id not in set(doomed)]
        verb = "would delete" if dry_run else "deleted"
        if not dry_run and doomed:
            from durable_graph.durable_tools import tool_log_for

            saver.prune(doomed, strategy="delete")
            log = tool_log_for(saver)
            for thread_id in doomed:
                log.delete_thread(thread_id)  # the recorded results of its durable tools
        out.print(f"{verb} {len(doomed)} thread(s)" + (": " + ", ".join(doomed) if doomed else ""))
        if keep is not None:
            if not dry_run and kept:
                if prune_keep is not None:
                    prune_keep(kept, keep)
                else:
                    saver.prune(kept, strategy="keep_latest")
            what = "the latest checkpoint" if keep == 1 else f"the latest {keep} checkpoints"
            out.print(f"{'would keep' if dry_run else 'kept'} only {what} of {len(kept)} thread(s)")
