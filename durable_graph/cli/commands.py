"""The ``durable-graph`` Typer app: every command, registered from the module of its group."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import typer

from durable_graph.cli import inspect, keys, run, serve, temporal
from durable_graph.cli.common import EXIT_CODES_HELP, UrlOption
from durable_graph.processes import stop_on_signals

app = typer.Typer(
    name="durable-graph",
    help="Run LangGraph agents that survive crashes: every node is checkpointed, any process can resume.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(ctx: typer.Context, url: UrlOption = None) -> None:
    """Run LangGraph agents that survive crashes: every node is checkpointed, any process can resume."""
    ctx.obj = {"url": url}


_COMMANDS: list[tuple[str, Callable[..., None]]] = [
    ("run", run.run),
    ("resume", run.resume),
    ("approve", run.approve),
    ("edit", run.edit),
    ("reject", run.reject),
    ("threads", inspect.threads),
    ("show", inspect.show),
    ("history", inspect.history),
    ("fork", run.fork),
    ("prune", inspect.prune),
    ("reencrypt", keys.reencrypt),
    ("worker", temporal.worker),
    ("dev-server", temporal.dev_server),
    ("serve", serve.serve),
]
for _name, _command in _COMMANDS:
    app.command(_name)(_command)


def main() -> None:
    """Entry point of the ``durable-graph`` console script."""
    # the embedded Postgres asks platformdirs for a runtime dir, which warns on systems without one
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")
    stop_on_signals()  # SIGTERM and SIGHUP stop every command as Ctrl-C does
    app()
