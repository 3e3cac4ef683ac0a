"""The commands that run a thread: ``run``, ``resume``, ``approve``, ``edit``, ``reject``, ``fork``.

Run settings (model, base URL, workdir, max steps, tools, memory) are saved in the metadata of each
checkpoint of a thread, so ``resume`` and ``approve`` rebuild the same graph in any process.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from langgraph.errors import GraphRecursionError
from langgraph.pregel import Pregel
from langgraph.types import Command
from rich.markup import escape

from durable_graph.cli import output
from durable_graph.cli.common import (
    EXIT_APPROVAL,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JsonOption,
    ThreadArg,
    UrlOption,
    WaitOption,
    exit_codes,
    fail,
    open_saver,
    url_of,
)
from durable_graph.cli.temporal import (
    TaskQueueOption,
    TemporalOption,
    answer_on_temporal,
    start_on_temporal,
)
from durable_graph.runs.agent import build_graph, open_graph
from durable_graph.runs.fork import fork_thread
from durable_graph.runs.lease import lease
from durable_graph.runs.runner import (
    NodeEvent,
    Outcome,
    check_can_resume,
    check_can_start,
    outcome,
    parse_args_json,
    prepare_answer,
    run_config,
    stream,
)
from durable_graph.runs.settings import RunSettings, new_thread_id
from durable_graph.runs.status import saved_settings
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE  # standard library only, no temporalio
from durable_graph.urls import parse_url


def drive(graph: Pregel, value: Any, thread_id: str, settings: RunSettings, url: str, as_json: bool) -> int:
    """Run (or continue) a thread, printing each node as it completes; returns the exit code."""
    out = output.console()
    error: BaseException | None = None
    try:
        for event in stream(graph, value, run_config(thread_id, settings)):
            _print_event(out, event, as_json)
    except KeyboardInterrupt:
        output.console(stderr=True).print(
            f"stopped; the last finished node is saved. Continue with: durable-graph resume {thread_id}"
            + output.url_flag(url)
        )
        return 130
    except GraphRecursionError as exc:
        output.console(stderr=True).print(f"[red]run failed:[/red] {escape(str(exc))}")
        return EXIT_FAILED
    except Exception as exc:  # a node that raised is recorded with the checkpoint: status "failed"
        error = exc
    result = outcome(graph, thread_id)
    if error is not None and result.status != "failed":
        raise error
    return report(result, url, as_json)


def report(result: Outcome, url: str, as_json: bool) -> int:
    """Print where the thread stands; returns the exit code for it."""
    out = output.console()
    if as_json:
        output.emit_json({"event": "end", **output.outcome_json(result, url)})
    else:
        output.print_outcome(out, result, url)
    return {"done": EXIT_OK, "interrupted": EXIT_APPROVAL, "failed": EXIT_FAILED}.get(
        result.status, EXIT_ERROR
    )


def _print_event(out: Any, event: NodeEvent, as_json: bool) -> None:
    if as_json:
        output.emit_json(output.event_json(event))
    else:
        output.print_event(out, event)


def _print_thread_line(thread_id: str, as_json: bool) -> None:
    if as_json:
        output.emit_json({"event": "thread", "thread": thread_id})
    else:
        output.emit_line(f"thread: {thread_id}")


# -- commands ----------------------------------------------------------------------------------


@exit_codes
def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="What the agent should do.")],
    thread: Annotated[
        str | None, typer.Option("--thread", help="Thread id to use (default: a new one).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Model spec provider:name (e.g. openai:gpt-4o-mini); default: offline scripted."
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Base URL of an OpenAI-compatible API.")
    ] = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Directory the file tools work in.", file_okay=False)
    ] = Path("."),
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Stop after this many model turns.")
    ] = 8,
    tools: Annotated[
        str | None,
        typer.Option(
            "--tools",
            help="module:function returning the agent's tools for a workdir (default: the demo tools).",
        ),
    ] = None,
    memory: Annotated[
        bool, typer.Option("--memory", help="Long-term memory across threads (Postgres or memory:// URLs).")
    ] = False,
    user: Annotated[str, typer.Option("--user", help="Whose long-term memories to use.")] = "default",
    temporal: TemporalOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Start a thread on TASK; prints the thread id first, then each node as it completes.

    With --temporal every node runs as a Temporal activity on a `durable-graph worker`."""
    from durable_graph.graphs import agent_input

    url = url_of(ctx, url)
    if not workdir.is_dir():
        raise fail(EXIT_USAGE, f"--workdir {str(workdir)!r} is not an existing directory")
    if not task.strip():
        raise fail(EXIT_USAGE, "TASK must not be empty")
    if memory and parse_url(url).kind == "sqlite":
        raise fail(EXIT_USAGE, "--memory needs a Postgres URL (postgresql://, embedded://) or memory://")
    if temporal and (memory or parse_url(url).kind not in ("postgres", "embedded")):
        raise fail(EXIT_USAGE, "--temporal needs a Postgres URL that the workers reach, and no --memory")
    settings = RunSettings(
        model=model,
        base_url=base_url,
        workdir=str(workdir.resolve()),
        max_steps=max_steps,
        tools=tools,
        memory=memory,
    )
    thread_id = thread or new_thread_id()
    _print_thread_line(thread_id, as_json)
    value = agent_input(task, max_steps=max_steps, user_id=user)
    if temporal:
        start_on_temporal(temporal, task_queue, url, thread_id, value, settings)
        raise typer.Exit(report_thread(url, thread_id, as_json))
    raise typer.Exit(start_thread(url, thread_id, value, settings, as_json=as_json, wait=wait))


def report_thread(url: str, thread_id: str, as_json: bool) -> int:
    """Print where a thread that ran elsewhere (on Temporal) stands; returns the exit code."""
    with open_saver(url) as saver:
        graph = build_graph(RunSettings(), saver, inspect_only=True)
        return report(outcome(graph, thread_id), url, as_json)


def start_thread(
    url: str, thread_id: str, value: Any, settings: RunSettings, *, as_json: bool = False, wait: bool = False
) -> int:
    """Run a new thread from input ``value``, printing each node; returns the exit code."""
    with ExitStack() as stack:
        saver = stack.enter_context(open_saver(url))
        stack.enter_context(lease(url, thread_id, wait=wait))
        check_can_start(saver, thread_id)
        return drive(open_graph(stack, url, saver, settings), value, thread_id, settings, url, as_json)


@exit_codes
def resume(
    ctx: typer.Context,
    thread_id: ThreadArg,
    temporal: TemporalOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Continue a thread whose process died (or whose last node failed) from its last checkpoint."""
    url = url_of(ctx, url)
    if temporal:
        with open_saver(url) as saver:
            settings = RunSettings.from_metadata(check_can_resume(saver, thread_id).metadata)
        _print_thread_line(thread_id, as_json)
        start_on_temporal(temporal, task_queue, url, thread_id, None, settings)
        raise typer.Exit(report_thread(url, thread_id, as_json))
    raise typer.Exit(resume_thread(url, thread_id, as_json=as_json, wait=wait))


def resume_thread(url: str, thread_id: str, *, as_json: bool = False, wait: bool = False) -> int:
    """Continue a crashed or failed thread from its last checkpoint; returns the exit code."""
    with ExitStack() as stack:
        saver = stack.enter_context(open_saver(url))
        stack.enter_context(lease(url, thread_id, wait=wait))
        settings = RunSettings.from_metadata(check_can_resume(saver, thread_id).metadata)
        _print_thread_line(thread_id, as_json)
        return drive(open_graph(stack, url, saver, settings), None, thread_id, settings, url, as_json)


def _answer(
    ctx: typer.Context,
    thread_id: str,
    decision: Any,
    url: str | None,
    as_json: bool,
    temporal: str | None,
    wait: bool,
) -> None:
    url = url_of(ctx, url)
    if temporal and answer_on_temporal(temporal, thread_id, decision):
        _print_thread_line(thread_id, as_json)
        raise typer.Exit(report_thread(url, thread_id, as_json))
    raise typer.Exit(answer_thread(url, thread_id, decision, as_json=as_json, wait=wait))


def answer_thread(
    url: str, thread_id: str, decision: Command, *, as_json: bool = False, wait: bool = False
) -> int:
    """Answer the thread's pending approval with ``decision`` and continue it; returns the exit code."""
    with ExitStack() as stack:
        saver = stack.enter_context(open_saver(url))
        graph, command, settings = prepare_answer(stack, url, saver, thread_id, decision, wait=wait)
        _print_thread_line(thread_id, as_json)
        return drive(graph, command, thread_id, settings, url, as_json)


@exit_codes
def approve(
    ctx: typer.Context,
    thread_id: ThreadArg,
    temporal: TemporalOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Approve the pending tool call of a thread and continue it (on Temporal if a run there waits)."""
    from durable_graph.graphs import approve as approve_decision

    _answer(ctx, thread_id, approve_decision(), url, as_json, temporal, wait)


@exit_codes
def edit(
    ctx: typer.Context,
    thread_id: ThreadArg,
    args: Annotated[str, typer.Option("--args", help="The tool's arguments as a JSON object.")],
    temporal: TemporalOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Run the pending tool call with other arguments (--args JSON) and continue the thread."""
    from durable_graph.graphs import edit as edit_decision

    _answer(ctx, thread_id, edit_decision(parse_args_json(args)), url, as_json, temporal, wait)


@exit_codes
def reject(
    ctx: typer.Context,
    thread_id: ThreadArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; the agent is told.")],
    temporal: TemporalOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Refuse the pending tool call (the agent is told --reason) and continue the thread."""
    from durable_graph.graphs import reject as reject_decision

    if not reason.strip():
        raise fail(EXIT_USAGE, "--reason must not be empty")
    _answer(ctx, thread_id, reject_decision(reason), url, as_json, temporal, wait)


@exit_codes
def fork(
    ctx: typer.Context,
    thread_id: ThreadArg,
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="Checkpoint id to fork from (see: history).")
    ],
    thread: Annotated[
        str | None, typer.Option("--thread", help="Id of the new thread (default: a new one).")
    ] = None,
    no_run: Annotated[bool, typer.Option("--no-run", help="Only copy; continue later with resume.")] = False,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Time travel: copy the state at a checkpoint to a new thread and continue it from there.

    The original thread is not changed."""
    url = url_of(ctx, url)
    new_id = thread or new_thread_id()
    with ExitStack() as stack:
        saver = stack.enter_context(open_saver(url))
        stack.enter_context(lease(url, new_id, wait=wait))
        settings = saved_settings(saver, thread_id)
        fork_thread(saver, thread_id, checkpoint, new_id)
        _print_thread_line(new_id, as_json)
        if no_run:
            output.emit_line(f"forked {thread_id}@{checkpoint}")
            output.emit_line(f"continue with: durable-graph resume {new_id}{output.url_flag(url)}")
            raise typer.Exit(EXIT_OK)
        code = drive(open_graph(stack, url, saver, settings), None, new_id, settings, url, as_json)
    raise typer.Exit(code)
