"""Serving the inbox with uvicorn until SIGINT or SIGTERM, stopping the decisions' runs first."""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from durable_graph.web.state import Inbox


def serve(app: FastAPI, host: str, port: int, *, on_stop: Callable[[int], None]) -> None:
    """Serve ``app`` (from ``create_app``) on ``host:port`` until SIGINT or SIGTERM.

    At the signal the inbox takes no more decisions, and the runs of those it took stop after the
    node they are in (``on_stop`` is told how many run); uvicorn then finishes the requests in
    progress, and the app's shutdown waits for those runs.
    """
    inbox: Inbox = app.state.inbox

    class InboxServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if not self.should_exit:
                on_stop(inbox.decisions.stop_taking())
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    InboxServer(config).run()
