"""``durable-graph serve``: the web inbox for approving, editing or rejecting waiting tool calls."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer

from durable_graph.cli import output
from durable_graph.cli.common import UrlOption, exit_codes, open_saver, url_of
from durable_graph.errors import MissingDependencyError
from durable_graph.urls import parse_url

TOKEN_ENV = "DURABLE_GRAPH_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@exit_codes
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; anything but loopback lets other machines in."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help=f"The token that every request needs (default: ${TOKEN_ENV}, else a new one, printed).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Serve the web inbox: approve, edit or reject the tool calls threads wait on (until Ctrl-C)."""
    url = url_of(ctx, url)
    try:
        from durable_graph.web import create_app
        from durable_graph.web.security import new_token
        from durable_graph.web.serving import serve as serve_app
    except ImportError as exc:
        raise MissingDependencyError(
            f"durable-graph serve needs the 'web' extra: pip install 'durable-graph[web]' ({exc})"
        ) from None
    if token is not None and not token.strip():
        raise typer.BadParameter("must not be empty", param_hint="--token")
    backend = parse_url(url)
    generated = new_token()
    # the server stops gracefully on SIGTERM as on Ctrl-C, then raises the signal again: end as on Ctrl-C
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with open_saver(url) as saver:
            app = create_app(saver, url=url, token=token or generated)
            _print_welcome(host, port, url, None if token else generated)
            serve_app(app, host, port, on_stop=_say_stopping)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if backend.kind == "embedded":
            from durable_graph import embedded

            embedded.release(backend.target or None)
    output.emit_line("inbox stopped")


def _say_stopping(running: int) -> None:
    runs = f"; {running} run(s) of decisions stop after the node they are in" if running else ""
    output.emit_line(f"stopping{runs}")


def _print_welcome(host: str, port: int, url: str, generated: str | None) -> None:
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{port}"
    output.emit_line(f"durable-graph inbox on {address} (threads in {url})")
    if generated is not None:
        output.emit_line(f"no --token or ${TOKEN_ENV} given, so this run made one; open the inbox with:")
        output.emit_line(f"  {address}/login?token={generated}")
    else:
        output.emit_line(f"log in at {address}/login with the token given")
    if host not in LOOPBACK:
        output.emit_line("warning: listening beyond this machine; traffic is plain HTTP (put HTTPS in front)")
