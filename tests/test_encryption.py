"""Encryption at rest on real Postgres and SQLite: no plaintext in any table or file, storage that
stays linear, rotation, and a clear error without the key that changes nothing."""

from __future__ import annotations

import operator
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typer.testing import CliRunner

from durable_graph.checkpointers import open_checkpointer
from durable_graph.cli import app
from durable_graph.encryption import KEY_ENV, OLD_KEYS_ENV, Keys
from durable_graph.errors import CorruptCheckpointError
from tests.pg import fresh_database

MARKER = "ACME-INVOICE-7731"
OLD, NEW = "o" * 32, "n" * 16


class Notes(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]
    summary: str


def note_graph(steps: int) -> StateGraph:
    def write(state: Notes) -> dict[str, Any]:
        n = len(state.get("notes", []))
        text = f"note {n}: {MARKER} " + secrets.token_hex(500)  # ~1 KB that compresses as text does
        return {"notes": [text], "summary": f"{n} notes about {MARKER}"}

    graph = StateGraph(Notes)
    previous = START
    for step in range(steps):
        graph.add_node(f"write_{step}", write)
        graph.add_edge(previous, f"write_{step}")
        previous = f"write_{step}"
    graph.add_edge(previous, END)
    return graph


def run_thread(url: str, keys: Keys | None, steps: int = 5) -> str:
    thread_id = "enc-" + uuid.uuid4().hex
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    with open_checkpointer(url, keys=keys) as saver:
        graph = note_graph(steps).compile(checkpointer=saver)
        graph.invoke({"notes": [f"first {MARKER}"]}, config, durability="sync")
        saver.put_writes(  # a pending write, as an interrupted step leaves
            graph.get_state(config).config, [("summary", f"pending {MARKER}")], "task-1"
        )
    return thread_id


def stored_bytes(url: str) -> bytes:
    """Every byte of every row of every table (Postgres) or the database files (SQLite)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())
    found = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    found.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(found)


def chunk_bytes(url: str, thread_id: str) -> tuple[int, int]:
    """How many list items the thread stores, and their bytes (not the groups of items)."""
    query = "SELECT count(*), sum(length(data)) FROM dg_checkpoint_chunks WHERE type NOT LIKE "
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            count, size = conn.execute(query + "'msgpack-items%' AND thread_id = ?", (thread_id,)).fetchone()
    else:
        with psycopg.connect(url) as conn:
            count, size = conn.execute(  # type: ignore[misc]
                query + "'msgpack-items%%' AND thread_id = %s", (thread_id,)
            ).fetchone()
    return int(count), int(size)


@pytest.fixture
def two_databases(url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Two new, empty databases of the backend of ``url``."""
    if url.startswith("sqlite:///"):
        yield f"sqlite:///{tmp_path / 'secret.db'}", f"sqlite:///{tmp_path / 'plain.db'}"
        return
    server = request.getfixturevalue("pg_server")
    with fresh_database(server, "secret") as secret, fresh_database(server, "plain") as plain:
        yield secret, plain


def test_no_plaintext_is_stored_with_a_key(two_databases: tuple[str, str]) -> None:
    secret, plain = two_databases
    run_thread(secret, Keys(OLD.encode()), steps=20)  # 20 notes: a list long enough to group
    assert MARKER.encode() not in stored_bytes(secret)
    run_thread(plain, None, steps=20)  # the control: without a key the marker is there
    assert MARKER.encode() in stored_bytes(plain)


def test_items_are_stored_once_and_storage_stays_linear(url: str) -> None:
    plain = run_thread(url, None, steps=30)
    encrypted = run_thread(url, Keys(OLD.encode()), steps=30)
    plain_count, plain_size = chunk_bytes(url, plain)
    count, size = chunk_bytes(url, encrypted)
    assert count == plain_count == 31  # every note once, however many versions hold it
    assert size <= 1.2 * plain_size


def test_rotated_keys_read_old_threads_and_a_missing_key_changes_nothing(url: str) -> None:
    thread_id = run_thread(url, Keys(OLD.encode()))
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    before = stored_bytes(url)

    with open_checkpointer(url, keys=None) as saver, pytest.raises(CorruptCheckpointError) as missing:
        saver.get_tuple(config)
    assert thread_id in str(missing.value) and KEY_ENV in str(missing.value)
    with (
        open_checkpointer(url, keys=Keys(NEW.encode())) as saver,
        pytest.raises(CorruptCheckpointError) as wrong,
    ):
        saver.get_tuple(config)
    assert OLD_KEYS_ENV in str(wrong.value) and missing.value.checkpoint_id
    assert stored_bytes(url) == before  # failed reads wrote nothing

    rotated = Keys(NEW.encode(), [OLD.encode()])
    with open_checkpointer(url, keys=rotated) as saver:
        graph = note_graph(2).compile(checkpointer=saver)
        assert MARKER in graph.get_state(config).values["summary"]
        graph.invoke({"notes": ["after rotation"]}, config, durability="sync")  # written under NEW
        assert graph.get_state(config).values["notes"][-1].startswith("note")


def test_the_cli_encrypts_with_the_key_in_the_environment(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    url = two_databases[0]
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text(f"Budget: 42 apples for {MARKER}\n")
    runner = CliRunner()
    task = "search for apples in my files and write a report"
    env = {KEY_ENV: OLD}
    started = runner.invoke(app, ["run", task, "--url", url, "--workdir", str(work)], env=env)
    assert started.exit_code == 4, started.output  # waits for approval of the report
    thread_id = started.stdout.splitlines()[0].removeprefix("thread: ")
    assert MARKER.encode() not in stored_bytes(url)

    shown = runner.invoke(app, ["show", thread_id, "--url", url, "--json"], env=env)
    assert shown.exit_code == 0 and thread_id in shown.stdout
    assert runner.invoke(app, ["history", thread_id, "--url", url], env=env).exit_code == 0
    refused = runner.invoke(app, ["show", thread_id, "--url", url], env={KEY_ENV: ""})
    assert refused.exit_code == 2 and KEY_ENV in refused.output  # bad input: the key
