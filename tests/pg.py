"""A real Postgres for the tests: ``$DURABLE_GRAPH_TEST_PG_URL``, else a testcontainers pgvector
container when a Docker engine answers, else the embedded server in a temporary dir."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

TEST_URL_ENV = "DURABLE_GRAPH_TEST_PG_URL"


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead of the one it names."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextmanager
def server_url(tmp_dir: Path) -> Iterator[str]:
    """The admin URL of a Postgres server with pgvector for this test session."""
    if os.environ.get(TEST_URL_ENV):
        yield os.environ[TEST_URL_ENV]
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

        with PostgresContainer("pgvector/pgvector:pg17", driver=None) as container:
            yield container.get_connection_url()
        return
    from durable_graph import embedded

    yield embedded.start(tmp_dir / "pg")


@contextmanager
def fresh_database(admin_url: str, label: str) -> Iterator[str]:
    """A new, empty database (with pgvector available) that is dropped afterwards."""
    name = "t_" + re.sub(r"\W", "_", label.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    try:
        yield url
    finally:
        with suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
