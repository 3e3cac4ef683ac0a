"""The commands that run a thread: ``run``, ``resume``, ``approve``, ``edit``, ``reject``, ``fork``.

Run settings (model, base URL, workdir, max steps, tools, memory) are saved in the metadata of each
checkpoint of a thread, so ``resume`` and ``approve`` rebuild the same graph in any process. Where a
thread runs (here or on Temporal) is recorded with it: ``resume``, ``approve``, ``edit`` and
``reject`` go there by themselves (``durable_graph.runs.answers``); ``--local`` and ``--temporal``
move it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from langgraph.errors import GraphRecursionError
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
    LocalOption,
    MoveToTemporalOption,
    TaskQueueOption,
    TemporalOption,
    check_temporal_url,
)
from durable_graph.runs.agent import open_graph
from durable_graph.runs.answers import continue_thread, start_thread
from durable_graph.runs.fork import fork_thread
from durable_graph.runs.lease import lease
from durable_graph.runs.placement import LOCAL, Runner, TemporalRunner
from durable_graph.runs.runner import (
    NodeEvent,
    OnEvent,
    Outcome,
    parse_args_json,
    run_here,
)
from durable_graph.runs.settings import RunSettings, new_thread_id
from durable_graph.runs.status import saved_settings
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE  # standard library only, no temporalio
from durable_graph.urls import parse_url


class _Printer:
    """Prints a run as it happens: the ``thread:`` line (once, before anything else), each node."""

    def __init__(self, thread_id: str, as_json: bool, *, announced: bool = False) -> None:
        self.thread_id, self.as_json, self.announced = thread_id, as_json, announced
        self.out = output.console()

    def announce(self) -> None:
        if not self.announced:
            self.announced = True
            _print_thread_line(self.thread_id, self.as_json)

    def event(self, event: NodeEvent) -> None:
        self.announce()
        if self.as_json:
            output.emit_json(output.event_json(event))
        else:
            output.print_event(self.out, event)


def drive(
    thread_id: str, url: str, as_json: bool, run: Callable[[OnEvent], Outcome], *, announced: bool = False
) -> int:
    """Run (or continue, or answer) a thread with ``run``, printing each node as it completes, then
    where the thread stands; returns the exit code."""
    printer = _Printer(thread_id, as_json, announced=announced)
    try:
        result = run(printer.event)
    except KeyboardInterrupt:
        output.console(stderr=True).print(
            f"stopped; the last finished node is saved. Continue with: durable-graph resume {thread_id}"
            + output.url_flag(url)
        )
        return 130
    except GraphRecursionError as exc:
        output.console(stderr=True).print(f"[red]run failed:[/red] {escape(str(exc))}")
        return EXIT_FAILED
    printer.announce()
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


def _print_thread_line(thread_id: str, as_json: bool) -> None:
    if as_json:
        output.emit_json({"event": "thread", "thread": thread_id})
    else:
        output.emit_line(f"thread: {thread_id}")


def _runner(local: bool, temporal: str | None, task_queue: str, url: str) -> Runner | None:
    """Where ``--local`` or ``--temporal`` move the thread (None: it stays where it runs)."""
    if local and temporal:
        raise fail(EXIT_USAGE, "--local and --temporal say opposite things; give one of them")
    if temporal:
        check_temporal_url(url)
        return TemporalRunner(temporal, task_queue=task_queue)
    return LOCAL if local else None


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
    runner: Runner = LOCAL
    if temporal:
        if memory:
            raise fail(EXIT_USAGE, "--temporal does not combine with --memory")
        check_temporal_url(url)
        runner = TemporalRunner(temporal, task_queue=task_queue)
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
    code = drive(
        thread_id,
        url,
        as_json,
        lambda on_event: start_thread(
            url, thread_id, value, settings, runner=runner, on_event=on_event, wait=wait
        ),
        announced=True,
    )
    raise typer.Exit(code)


def _continue(
    ctx: typer.Context,
    thread_id: str,
    decision: Command | None,
    url: str | None,
    as_json: bool,
    wait: bool,
    local: bool,
    temporal: str | None,
    task_queue: str,
) -> None:
    url = url_of(ctx, url)
    runner = _runner(local, temporal, task_queue, url)
    code = drive(
        thread_id,
        url,
        as_json,
        lambda on_event: continue_thread(
            url, thread_id, decision, on_event=on_event, runner=runner, wait=wait
        ),
    )
    raise typer.Exit(code)


@exit_codes
def resume(
    ctx: typer.Context,
    thread_id: ThreadArg,
    local: LocalOption = False,
    temporal: MoveToTemporalOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Continue a thread whose runner died (or whose last node failed) from its last checkpoint,
    where the thread runs (here, or on its Temporal server)."""
    _continue(ctx, thread_id, None, url, as_json, wait, local, temporal, task_queue)


@exit_codes
def approve(
    ctx: typer.Context,
    thread_id: ThreadArg,
    local: LocalOption = False,
    temporal: MoveToTemporalOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Approve the pending tool call of a thread and continue it where it runs."""
    from durable_graph.graphs import approve as approve_decision

    _continue(ctx, thread_id, approve_decision(), url, as_json, wait, local, temporal, task_queue)


@exit_codes
def edit(
    ctx: typer.Context,
    thread_id: ThreadArg,
    args: Annotated[str, typer.Option("--args", help="The tool's arguments as a JSON object.")],
    local: LocalOption = False,
    temporal: MoveToTemporalOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Run the pending tool call with other arguments (--args JSON) and continue the thread."""
    from durable_graph.graphs import edit as edit_decision

    decision = edit_decision(parse_args_json(args))
    _continue(ctx, thread_id, decision, url, as_json, wait, local, temporal, task_queue)


@exit_codes
def reject(
    ctx: typer.Context,
    thread_id: ThreadArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; the agent is told.")],
    local: LocalOption = False,
    temporal: MoveToTemporalOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Refuse the pending tool call (the agent is told --reason) and continue the thread."""
    from durable_graph.graphs import reject as reject_decision

    if not reason.strip():
        raise fail(EXIT_USAGE, "--reason must not be empty")
    decision = reject_decision(reason)
    _continue(ctx, thread_id, decision, url, as_json, wait, local, temporal, task_queue)


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
        graph = open_graph(stack, url, saver, settings)
        code = drive(
            new_id,
            url,
            as_json,
            lambda on_event: run_here(graph, None, new_id, settings, on_event),
            announced=True,
        )
    raise typer.Exit(code)
