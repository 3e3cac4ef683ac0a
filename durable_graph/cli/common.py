"""What every ``durable-graph`` command shares: exit codes, options, error handling, the saver."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from langgraph.checkpoint.base import BaseCheckpointSaver
from rich.markup import escape

from durable_graph.cli import output
from durable_graph.errors import (
    BackendUnavailableError,
    DurableGraphError,
    InvalidResumeError,
    InvalidURLError,
    TemporalUnavailableError,
    ThreadBusyError,
    ThreadNotFoundError,
)
from durable_graph.runs.runner import ThreadStateError
from durable_graph.runs.status import CheckpointNotFoundError
from durable_graph.urls import default_url

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_APPROVAL = 4
EXIT_BACKEND = 5
EXIT_FAILED = 6
EXIT_BUSY = 7

EXIT_CODES_HELP = (
    "Exit codes: 0 success/done · 1 unexpected error · 2 usage or bad input · 3 thread (or checkpoint) "
    "not found · 4 waiting for approval · 5 backend unavailable · 6 run failed · 7 thread busy "
    "(another process is running it)."
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Backend URL: postgresql://…, embedded://, sqlite:///file.db or memory:// "
        "(default: $DURABLE_GRAPH_URL, else embedded://)",
        show_default=False,
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait", help="If another process is running the thread, wait for it instead of exiting with 7."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]
ThreadArg = Annotated[str, typer.Argument(help="Thread id (as printed by run; see: durable-graph threads).")]


def url_of(ctx: typer.Context, url: str | None) -> str:
    """The command's ``--url``, else the one given before the command, else the default URL."""
    root = ctx.find_root().obj or {}
    return url or root.get("url") or default_url()


# -- errors and exit codes ---------------------------------------------------------------------


def fail(code: int, message: str) -> typer.Exit:
    output.console(stderr=True).print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def backend_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [
        BackendUnavailableError,
        TemporalUnavailableError,
        sqlite3.OperationalError,
    ]
    try:
        import psycopg
        import psycopg_pool

        errors += [psycopg.OperationalError, psycopg_pool.PoolTimeout]
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(errors)


F = TypeVar("F", bound=Callable[..., Any])


def exit_codes(func: F) -> F:
    """Turn the errors a command can expect into a clear message and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ThreadNotFoundError, CheckpointNotFoundError) as exc:
            raise fail(EXIT_NOT_FOUND, str(exc)) from None
        except ThreadStateError as exc:
            raise fail(EXIT_APPROVAL if exc.status == "interrupted" else EXIT_USAGE, str(exc)) from None
        except ThreadBusyError as exc:
            raise fail(EXIT_BUSY, str(exc)) from None
        except (InvalidURLError, InvalidResumeError) as exc:
            raise fail(EXIT_USAGE, str(exc)) from None
        except backend_errors() as exc:
            raise fail(EXIT_BACKEND, f"backend unavailable: {exc}") from None
        except DurableGraphError as exc:
            raise fail(EXIT_USAGE, str(exc)) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def open_saver(url: str) -> Iterator[BaseCheckpointSaver]:
    from durable_graph.checkpointers import open_checkpointer

    with open_checkpointer(url) as saver:
        yield saver


def is_active(url: str, thread_id: str) -> bool:
    """Whether a process is running the thread right now (it holds the thread's lease)."""
    from durable_graph.leases import thread_lease

    try:
        with thread_lease(url, thread_id):
            return False
    except ThreadBusyError:
        return True
