"""``create_app``: the inbox as an ASGI app over an open checkpointer (``durable-graph serve`` runs it).

Pages are under ``/``, the same data as JSON under ``/api``; errors are pages or JSON alike. The
caller owns the checkpointer: it must stay open while the app serves.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from langgraph.checkpoint.base import BaseCheckpointSaver
from starlette.exceptions import HTTPException

from durable_graph.errors import (
    BackendUnavailableError,
    DurableGraphError,
    InvalidResumeError,
    ThreadBusyError,
    ThreadNotFoundError,
)
from durable_graph.runs.runner import ThreadStateError
from durable_graph.web import api, pages
from durable_graph.web.decisions import Decisions, ServerStoppingError
from durable_graph.web.security import Guard, Refused
from durable_graph.web.state import Inbox
from durable_graph.web.views import BadQueryError

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0
"""Seconds a stopping server gives the runs of decisions to finish the node they are in."""


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _backend_errors() -> tuple[type[Exception], ...]:
    import psycopg
    import psycopg_pool

    return (
        BackendUnavailableError,
        sqlite3.OperationalError,
        psycopg.OperationalError,
        psycopg_pool.PoolTimeout,
    )


def _status_of(exc: BaseException) -> int:
    """The HTTP status of an error the inbox expects (anything else is a 500)."""
    statuses: list[tuple[tuple[type[Exception], ...], int]] = [
        ((ThreadNotFoundError,), 404),
        ((ThreadBusyError, ThreadStateError), 409),
        ((InvalidResumeError, BadQueryError), 422),
        ((ServerStoppingError, *_backend_errors()), 503),
    ]
    return next((status for kinds, status in statuses if isinstance(exc, kinds)), 500)


def create_app(saver: BaseCheckpointSaver, *, url: str, token: str) -> FastAPI:
    """The inbox over ``saver`` (opened on ``url``), changes allowed with ``token``."""
    decisions = Decisions(url, saver)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(decisions.stop, STOP_TIMEOUT)

    app = FastAPI(
        title="durable-graph inbox",
        summary="Approve, edit or reject the tool calls that durable-graph agents wait on.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.inbox = Inbox(saver=saver, url=url, guard=Guard(token), decisions=decisions)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.middleware("http")
    async def guard_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            if not is_open(request):
                app.state.inbox.guard.check_read(request)
        except Refused as refused:
            response = _refused(request, refused)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return _refused(request, exc)

    @app.exception_handler(DurableGraphError)
    async def expected(request: Request, exc: DurableGraphError) -> Response:
        return error_response(request, _status_of(exc), str(exc))

    async def backend(request: Request, exc: Exception) -> Response:
        return error_response(request, 503, f"backend unavailable: {exc}")

    for backend_error in _backend_errors():
        app.add_exception_handler(backend_error, backend)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422, validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return error_response(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error serving %s", request.url.path, exc_info=exc)
        return error_response(request, 500, "internal error; the server's log says more")

    return app


def is_open(request: Request) -> bool:
    """Whether the request is for what needs no token: the login page and the static files."""
    return request.url.path == "/login" or request.url.path.startswith("/static/")


def is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def error_response(request: Request, status: int, message: str) -> Response:
    """An error as JSON (``{"error": message}``) for the API, as a page otherwise."""
    if is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return pages.error_page(request, status, message)


def _refused(request: Request, refused: Refused) -> Response:
    if refused.status == 401 and request.method == "GET" and not is_api(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    response = error_response(request, refused.status, refused.message)
    if refused.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def validation_message(exc: RequestValidationError) -> str:
    """What was wrong with a request's parameters or body, in one line."""
    problems: list[str] = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "invalid request: " + "; ".join(problems)
