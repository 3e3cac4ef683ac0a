"""Who may use the inbox: one token, browser sessions signed with it, and cross-site request checks.

- Every request but the login page and static files needs the token: as ``Authorization: Bearer
  TOKEN`` (scripts), or a session cookie that ``/login?token=TOKEN`` sets (browsers). The cookie
  holds a random session id signed with a key derived from the token, so restarting the server with
  the same token keeps sessions valid and a new token ends them all.
- A request that changes anything from a browser session also needs the session's CSRF token (a
  hidden form field or the ``X-CSRF-Token`` header) and an ``Origin`` (or ``Referer``) of this very
  host. The cookie is ``HttpOnly`` and ``SameSite=Strict``. A bearer token is never sent by a browser
  on its own, so bearer requests need neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

SESSION_COOKIE = "durable_graph_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def new_token() -> str:
    """A fresh random token for a server started without one."""
    return secrets.token_urlsafe(24)


class Refused(Exception):
    """A request without the right credentials: ``status`` 401 (none or wrong) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Guard:
    """Checks requests against the server's token."""

    def __init__(self, token: str) -> None:
        if not token or not token.strip():
            raise ValueError("the inbox token must not be empty")
        self._token = token.encode()
        self._key = hashlib.sha256(b"durable-graph inbox\0" + self._token).digest()

    def token_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        """A signed session id for the session cookie."""
        session_id = secrets.token_urlsafe(18)
        return f"{session_id}.{self._sign('session', session_id)}"

    def session_of(self, request: Request) -> str | None:
        """The session id of a request's valid session cookie, else None."""
        session_id, _, signature = request.cookies.get(SESSION_COOKIE, "").partition(".")
        if session_id and hmac.compare_digest(signature, self._sign("session", session_id)):
            return session_id
        return None

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token that forms of this session carry."""
        return self._sign("csrf", session_id)

    def _bearer(self, request: Request) -> str | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else None

    def check_read(self, request: Request) -> None:
        """Raise ``Refused`` unless the request carries the token or a valid session."""
        bearer = self._bearer(request)
        if bearer is not None:
            if not self.token_matches(bearer):
                raise Refused(401, "wrong token")
            return
        if self.session_of(request) is None:
            raise Refused(
                401,
                "this needs the inbox token: open the link that `durable-graph serve` printed, "
                "or send the header 'Authorization: Bearer TOKEN'",
            )

    def check_change(self, request: Request, csrf: str | None) -> None:
        """Raise ``Refused`` unless the request may change something: the token, or a valid session
        with its CSRF token, sent from a page of this very host."""
        self.check_read(request)
        if self._bearer(request) is not None:
            return
        session_id = self.session_of(request)
        assert session_id is not None  # check_read passed without a bearer token
        if not same_origin(request):
            raise Refused(403, "refused: the request did not come from a page of this inbox")
        given = csrf if csrf is not None else request.headers.get(CSRF_HEADER)
        if given is None or not hmac.compare_digest(given, self.csrf_token(session_id)):
            raise Refused(
                403, "refused: the form's CSRF token is missing or wrong; reload the page and try again"
            )


def same_origin(request: Request) -> bool:
    """Whether the ``Origin`` header (else the ``Referer``) names the host the request was sent to."""
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host")
    if not source or not host or source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
