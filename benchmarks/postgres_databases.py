"""Throwaway Postgres databases for the benchmarks: one per saver, on one server."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


def start_embedded() -> str:
    """Admin URL of an embedded Postgres in a temporary dir, removed at exit."""
    from durable_graph import embedded

    data_dir = tempfile.mkdtemp(prefix="durable-graph-bench-")
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return embedded.start(Path(data_dir) / "pg")


def with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


@contextmanager
def databases(admin_url: str, labels: list[str]) -> Iterator[dict[str, str]]:
    """A new database per label (URL by label), dropped afterwards."""
    names = {label: f"bench_{label}_{uuid.uuid4().hex[:8]}" for label in labels}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {label: with_database(admin_url, name) for label, name in names.items()}
    finally:
        with suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
