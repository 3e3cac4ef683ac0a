"""Backend URLs: which database a checkpointer or store talks to.

| URL                                      | backend                                  |
| ---------------------------------------- | ---------------------------------------- |
| ``postgresql://user@host:port/db``       | a Postgres server the user runs          |
| ``embedded://`` or ``embedded:///dir``   | the embedded Postgres (see ``embedded``) |
| ``sqlite:///path/to/file.db``            | SQLite (``sqlite:///:memory:`` in RAM)   |
| ``memory://``                            | process memory                           |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from durable_graph.errors import InvalidURLError

URL_ENV = "DURABLE_GRAPH_URL"
DEFAULT_URL = "embedded://"

Kind = Literal["postgres", "embedded", "sqlite", "memory"]

_EXAMPLES = "postgresql://user@host:5432/db, embedded://, sqlite:///path/file.db or memory://"


@dataclass(frozen=True)
class BackendURL:
    """A parsed backend URL. ``target`` is a conninfo, a file path or a data dir ("" = default)."""

    kind: Kind
    target: str
    url: str

    def postgres_conninfo(self) -> str:
        """The conninfo of the Postgres behind this URL, starting the embedded server if needed."""
        if self.kind == "postgres":
            return self.target
        if self.kind == "embedded":
            from durable_graph import embedded

            return embedded.start(self.target or None)
        raise InvalidURLError(f"{self.url!r} is not a Postgres URL")


def default_url() -> str:
    """``$DURABLE_GRAPH_URL`` when set, else ``embedded://``."""
    return os.environ.get(URL_ENV) or DEFAULT_URL


def parse_url(url: str | None = None) -> BackendURL:
    """Parse a backend URL (the default one when ``url`` is None) or raise ``InvalidURLError``."""
    if url is None:
        url = default_url()
    if not isinstance(url, str) or "://" not in url:
        raise InvalidURLError(f"not a backend URL: {url!r}; expected one of {_EXAMPLES}")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        parts = urlsplit(url)
        if not (parts.hostname or "host=" in parts.query):
            raise InvalidURLError(f"Postgres URL {url!r} names no host")
        return BackendURL("postgres", "postgresql://" + rest, url)
    if scheme == "embedded":
        return BackendURL("embedded", rest, url)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise InvalidURLError(
                f"SQLite URL {url!r} names no file; use sqlite:///relative.db, "
                "sqlite:////absolute/path.db or sqlite:///:memory:"
            )
        return BackendURL("sqlite", rest[1:], url)
    if scheme == "memory":
        if rest not in ("", "/"):
            raise InvalidURLError(f"memory URL takes no path: {url!r}; use memory://")
        return BackendURL("memory", "", url)
    raise InvalidURLError(f"unknown backend {scheme!r} in {url!r}; expected one of {_EXAMPLES}")
