from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.postgres import PostgresCheckpointer
from tests.pg import fresh_database, server_url


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of the real Postgres server shared by the whole test session."""
    with server_url(tmp_path_factory.mktemp("embedded")) as url:
        yield url


@pytest.fixture(scope="module")
def pg_url(pg_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A ``postgresql://`` URL of a database of this test module's own."""
    with fresh_database(pg_server, request.module.__name__.rsplit(".", 1)[-1]) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend URL for tests that must pass on both durable backends: a SQLite file, then Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'threads.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module")
def saver(pg_url: str) -> Iterator[PostgresCheckpointer]:
    """The module's Postgres checkpointer (a module may define a ``saver`` of its own instead)."""
    with open_checkpointer(pg_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def fresh_reader(pg_url: str) -> Iterator[PostgresCheckpointer]:
    """A Postgres checkpointer that keeps no items: each read is that of a process new to the thread."""
    with PostgresCheckpointer(pg_url, item_cache_bytes=0) as opened:
        yield opened
