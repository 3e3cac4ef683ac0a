"""Where a thread runs: here (any process that takes its lease) or on a Temporal workflow.

A thread runs locally unless a Temporal run of it was started: then the thread's database records
where that run is (server address, namespace, task queue, workflow id) in a table of its own,
``durable_graph_thread_runners``, one row per thread on Temporal. Every process that reaches the
database reads it there, so an answer given anywhere reaches the run that waits for it
(``durable_graph.runs.answers``). Taking the thread back (``record_runner(url, thread_id, LOCAL)``)
deletes the row. The row is not part of the checkpoints because it must be written when a run
*starts*, before that run has written anything, and must not add a step to the thread's history.

Only Postgres databases (``postgresql://``, ``embedded://``) can hold threads that run on Temporal:
on SQLite and in memory every thread runs locally and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durable_graph.errors import BackendUnavailableError, InvalidURLError
from durable_graph.migrations import Migration, migrate
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE, workflow_id_for  # standard library only
from durable_graph.urls import parse_url

MIGRATIONS = [
    Migration(
        1,
        """
        CREATE TABLE durable_graph_thread_runners (
            thread_id text PRIMARY KEY,
            address text NOT NULL,
            namespace text NOT NULL,
            task_queue text NOT NULL,
            workflow_id text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )
        """,
    )
]
_READ = "SELECT address, namespace, task_queue FROM durable_graph_thread_runners WHERE thread_id = %s"
_WRITE = """
INSERT INTO durable_graph_thread_runners (thread_id, address, namespace, task_queue, workflow_id)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (thread_id) DO UPDATE SET address = excluded.address, namespace = excluded.namespace,
    task_queue = excluded.task_queue, workflow_id = excluded.workflow_id, recorded_at = now()
"""
_DELETE = "DELETE FROM durable_graph_thread_runners WHERE thread_id = %s"


@dataclass(frozen=True)
class LocalRunner:
    """The thread runs in whichever process continues it (the CLI, your program, a server)."""

    def describe(self) -> str:
        return "locally"

    def as_json(self, thread_id: str) -> dict[str, str]:
        return {"kind": "local"}


@dataclass(frozen=True)
class TemporalRunner:
    """The thread runs on Temporal: workflow ``workflow_id(thread_id)`` on the server at ``address``,
    its nodes on the workers that poll ``task_queue``."""

    address: str
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE

    @staticmethod
    def workflow_id(thread_id: str) -> str:
        return workflow_id_for(thread_id)

    def describe(self) -> str:
        namespace = "" if self.namespace == "default" else f", namespace {self.namespace!r}"
        return f"on Temporal at {self.address} (task queue {self.task_queue!r}{namespace})"

    def as_json(self, thread_id: str) -> dict[str, str]:
        return {
            "kind": "temporal",
            "address": self.address,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
            "workflow_id": self.workflow_id(thread_id),
        }


Runner = LocalRunner | TemporalRunner
LOCAL = LocalRunner()

_migrated: set[str] = set()


def _connect(conninfo: str) -> Any:
    import psycopg

    try:
        conn = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"cannot read where threads run: {exc}") from exc
    if conninfo not in _migrated:
        migrate(conn, "thread_runners", MIGRATIONS)
        _migrated.add(conninfo)
    return conn


def runner_of(url: str, thread_id: str) -> Runner:
    """Where thread ``thread_id`` of the database at ``url`` runs (``LOCAL`` unless recorded)."""
    backend = parse_url(url)
    if backend.kind not in ("postgres", "embedded"):
        return LOCAL
    with _connect(backend.postgres_conninfo()) as conn:
        row = conn.execute(_READ, (thread_id,)).fetchone()
    return LOCAL if row is None else TemporalRunner(*row)


def record_runner(url: str, thread_id: str, runner: Runner) -> None:
    """Record that thread ``thread_id`` runs on ``runner`` from now on."""
    backend = parse_url(url)
    if backend.kind not in ("postgres", "embedded"):
        if isinstance(runner, TemporalRunner):
            raise InvalidURLError(f"threads in {url!r} cannot run on Temporal: it needs a Postgres URL")
        return
    with _connect(backend.postgres_conninfo()) as conn:
        if isinstance(runner, TemporalRunner):
            params = (thread_id, runner.address, runner.namespace, runner.task_queue)
            conn.execute(_WRITE, (*params, runner.workflow_id(thread_id)))
        else:
            conn.execute(_DELETE, (thread_id,))
