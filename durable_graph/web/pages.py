"""The inbox's pages: the inbox, all threads, a thread with its decision forms, logging in and out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from langgraph.types import Command

from durable_graph.errors import InvalidResumeError, ThreadBusyError
from durable_graph.runs.runner import ThreadStateError, parse_args_json
from durable_graph.web.decisions import refusal
from durable_graph.web.security import CSRF_FIELD, SESSION_COOKIE, Refused, safe_next, same_origin
from durable_graph.web.state import PageNumber, inbox_of
from durable_graph.web.views import inbox_page, thread_view, threads_page

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)


def thread_link(thread_id: str) -> str:
    return "/threads/" + quote(thread_id, safe="")


def _when(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    try:
        when = datetime.fromisoformat(iso or "")
    except ValueError:
        return iso or ""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
    templates.env.filters.update(
        pretty=lambda value: json.dumps(value, indent=2, ensure_ascii=False),
        compact=lambda value: json.dumps(value, ensure_ascii=False),
        when=_when,
        thread_link=thread_link,
    )
    return templates


templates = _templates()


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page; forms on it get the CSRF token of the browser's session."""
    inbox = inbox_of(request)
    session = inbox.guard.session_of(request)
    context = {"csrf": inbox.guard.csrf_token(session) if session else None, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status)


@router.get("/")
def inbox(request: Request, page: PageNumber = 1) -> Response:
    """Every thread waiting for a decision, newest first."""
    return render(request, "inbox.html", {"nav": "inbox", "page": inbox_page(inbox_of(request).saver, page)})


@router.get("/threads")
def threads(request: Request, status: str | None = None, page: PageNumber = 1) -> Response:
    """All threads, or those with one status."""
    state = inbox_of(request)
    listing = threads_page(state.saver, state.url, state.decisions, status or None, page)
    return render(request, "threads.html", {"nav": "threads", "page": listing, "status": status or ""})


@router.get("/threads/{thread_id}")
def thread(request: Request, thread_id: str) -> Response:
    """A thread: its status, the pending decision, its messages and the timeline of its checkpoints."""
    return _thread_page(request, thread_id)


def _thread_page(
    request: Request, thread_id: str, form: dict[str, Any] | None = None, status: int = 200
) -> Response:
    state = inbox_of(request)
    view = thread_view(state.saver, state.url, state.decisions, thread_id)
    return render(request, "thread.html", {"nav": "threads", "view": view, "form": form or {}}, status)


@router.post("/threads/{thread_id}/decision")
def decide(
    request: Request,
    thread_id: str,
    action: Annotated[str, Form()],
    args: Annotated[str | None, Form()] = None,
    reason: Annotated[str | None, Form()] = None,
    interrupt_id: Annotated[str | None, Form()] = None,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    """Approve, edit or reject the pending tool call; the run goes on in the background."""
    state = inbox_of(request)
    state.guard.check_change(request, csrf_token)
    form = {"action": action, "args": args, "reason": reason}
    try:
        state.decisions.decide(
            thread_id, form_decision(action, args, reason), interrupt_id=interrupt_id or None
        )
    except InvalidResumeError as exc:
        return _thread_page(request, thread_id, {**form, "error": str(exc)}, 422)
    except (ThreadBusyError, ThreadStateError) as exc:
        return _thread_page(request, thread_id, {**form, "error": refusal(exc)}, 409)
    return RedirectResponse(thread_link(thread_id), status_code=303)


def form_decision(action: str, args: str | None, reason: str | None) -> Command:
    """The decision a form sent; the edited arguments must be a JSON object."""
    if action == "edit":
        return Command(resume={"action": "edit", "args": parse_args_json(args or "", "the text you entered")})
    if action == "reject":
        return Command(resume={"action": "reject", "reason": (reason or "").strip()})
    return Command(resume={"action": action})


@router.get("/login")
def login_form(request: Request, token: str | None = None, next: str | None = None) -> Response:
    """Log in with the token given in the link `durable-graph serve` printed, or show the form."""
    if token is None:
        return render(request, "login.html", {"next": safe_next(next)})
    return _log_in(request, token, next)


@router.post("/login")
def login(
    request: Request, token: Annotated[str, Form()], next: Annotated[str | None, Form()] = None
) -> Response:
    if not same_origin(request):
        raise Refused(403, "refused: the request did not come from a page of this inbox")
    return _log_in(request, token, next)


def _log_in(request: Request, token: str, next: str | None) -> Response:
    guard = inbox_of(request).guard
    if not guard.token_matches(token):
        return render(request, "login.html", {"next": safe_next(next), "error": "wrong token"}, 401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        guard.new_session(),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None) -> Response:
    inbox_of(request).guard.check_change(request, csrf_token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
