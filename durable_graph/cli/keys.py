"""``durable-graph reencrypt``: threads rewritten under the newest encryption key."""

from __future__ import annotations

from typing import Annotated

import typer

from durable_graph.cli import output
from durable_graph.cli.common import EXIT_USAGE, UrlOption, exit_codes, fail, url_of


@exit_codes
def reencrypt(
    ctx: typer.Context,
    thread_ids: Annotated[
        list[str] | None, typer.Argument(help="Threads to rewrite (default with --all: every thread).")
    ] = None,
    all_threads: Annotated[bool, typer.Option("--all", help="Rewrite every thread of the database.")] = False,
    url: UrlOption = None,
) -> None:
    """Encrypt threads under the newest key ($LANGGRAPH_AES_KEY), reading older ones from
    $DURABLE_GRAPH_OLD_AES_KEYS; plaintext threads get encrypted. Safe to stop and run again."""
    from rich.progress import Progress

    from durable_graph.reencrypt import reencrypt as rewrite

    if bool(thread_ids) == all_threads:
        raise fail(EXIT_USAGE, "name the threads to rewrite, or pass --all (not both)")
    with Progress(console=output.console(stderr=True), transient=True) as progress:
        task = progress.add_task("re-encrypting", total=len(thread_ids) if thread_ids else None)

        def advanced(thread_id: str, blobs: int) -> None:
            progress.update(task, advance=1, description=f"re-encrypting ({thread_id}: {blobs} blobs)")

        done = rewrite(url_of(ctx, url), thread_ids or None, on_thread=advanced)
    output.emit_line(f"re-encrypted {done.blobs} blobs in {done.threads} threads")
