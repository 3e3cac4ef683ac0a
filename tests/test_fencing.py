"""Fencing: a runner that lost its thread's lease commits nothing more, on a real Postgres.

Runners are separate processes (``tests.fencing_runner``); the lease connection is terminated with
``pg_terminate_backend`` or the whole server is crash-restarted while a runner is inside a node.
Whatever happens, the durable tool's effect happens once and the thread's history is one line.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from durable_graph.checkpointers import open_checkpointer
from durable_graph.durable_tools import ToolCallKey, open_tool_log
from durable_graph.errors import LeaseLostError
from durable_graph.leases import advisory_key, thread_lease
from tests.chaos.pgserver import OwnPostgres
from tests.fencing_runner import LEASE_LOST, build

ROOT = Path(__file__).resolve().parents[1]
RAISE_EPOCH = "UPDATE dg_thread_leases SET epoch = epoch + 1 WHERE thread_id = %s"


class Runner:
    """A ``tests.fencing_runner`` process and the lines it printed."""

    def __init__(self, url: str, thread_id: str, workdir: Path, mode: str) -> None:
        command = [sys.executable, "-m", "tests.fencing_runner", url, thread_id, str(workdir), mode]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_for(self, line: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.lines:
            assert self.proc.poll() is None or line in self.lines, (
                f"exited early: {self.lines} {self.stderr()}"
            )
            assert time.monotonic() < deadline, f"no {line!r} in {self.lines}"
            time.sleep(0.02)

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""


def effects(workdir: Path) -> list[str]:
    path = workdir / "effects"
    return path.read_text().splitlines() if path.exists() else []


def history_is_one_line(url: str, thread_id: str) -> bool:
    """No checkpoint of the thread has two children: nothing forked its history."""
    with open_checkpointer(url) as saver:
        parents = [
            (c.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            for c in saver.list({"configurable": {"thread_id": thread_id}})
        ]
    return len(parents) == len(set(parents))


def final_visits(url: str, thread_id: str, workdir: Path) -> list[str]:
    with open_checkpointer(url) as saver:
        state = (
            build(workdir).compile(checkpointer=saver).get_state({"configurable": {"thread_id": thread_id}})
        )
    assert not state.next, f"thread {thread_id} is not finished: next {state.next}"
    return list(state.values["visited"])


def lease_backends(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'durable-graph lease' "
            "AND datname = current_database()"
        ).fetchall()
    return [row[0] for row in rows]


def lock_holders(url: str, thread_id: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (advisory_key(thread_id),),
        ).fetchall()
    return [row[0] for row in rows]


def raise_epoch(url: str, thread_id: str) -> None:
    """What another runner's takeover does to the thread's epoch."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RAISE_EPOCH, (thread_id,))


def terminate(url: str, pids: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _checkpoint(checkpoint_id: str) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = checkpoint_id
    return checkpoint


# -- in one process: the statements ---------------------------------------------------------------


def test_a_write_waits_for_a_takeover_in_progress_then_is_refused(pg_url: str) -> None:
    thread_id = "refused"
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as saver, thread_lease(pg_url, thread_id) as lease:
        first = saver.put(config, _checkpoint("1"), {"step": 0}, {})
        with psycopg.connect(pg_url) as takeover:  # a transaction: the new epoch is not committed yet
            takeover.execute(
                "UPDATE dg_thread_leases SET epoch = epoch + 1 WHERE thread_id = %s", (thread_id,)
            )
            outcome: list[BaseException | None] = []

            def put_second() -> None:
                try:
                    saver.put(first, _checkpoint("2"), {"step": 1}, {})
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            writer = threading.Thread(target=put_second)
            writer.start()
            writer.join(0.5)
            assert writer.is_alive(), "the fenced put did not wait for the takeover's row lock"
        writer.join(30)  # the takeover committed as the block ended
        assert len(outcome) == 1 and isinstance(outcome[0], LeaseLostError)
        with pytest.raises(LeaseLostError, match="another runner took the thread over"):
            saver.put_writes(first, [("a", 1)], "task")
        with pytest.raises(LeaseLostError):
            lease.check()
        assert [c.checkpoint["id"] for c in saver.list(config)] == ["1"]
        assert saver.get_tuple(first).pending_writes == []  # type: ignore[union-attr]


def test_no_durable_tool_starts_under_a_lost_lease(pg_url: str) -> None:
    key = ToolCallKey("claims", "", "task", "id:1")
    with thread_lease(pg_url, "claims"), open_tool_log(pg_url) as log:
        assert log.begin(key, "tool").attempts == 1
        raise_epoch(pg_url, "claims")
        with pytest.raises(LeaseLostError):
            log.finish(key, *log.codec.dumps("late"))
        with pytest.raises(LeaseLostError):
            log.begin(ToolCallKey("claims", "", "task", "id:2"), "tool")
    with open_tool_log(pg_url) as log:
        assert [(r.key.call_id, r.done) for r in log.records("claims")] == [("id:1", False)]


def test_a_leased_run_time_travels_and_updates_old_checkpoints(pg_url: str, tmp_path: Path) -> None:
    """Deliberate branches are not forks by two runners: they work under a lease."""
    (tmp_path / "gate").touch()
    config: RunnableConfig = {"configurable": {"thread_id": "branches"}}
    with open_checkpointer(pg_url) as saver, thread_lease(pg_url, "branches"):
        graph = build(tmp_path).compile(checkpointer=saver)
        graph.invoke({"visited": []}, config, durability="sync")
        after_first = next(s for s in graph.get_state_history(config) if s.next == ("second",))
        replayed = graph.invoke(None, after_first.config, durability="sync")
        updated = graph.update_state(after_first.config, {"visited": ["edited"]})
    assert replayed["visited"] == ["first", "second", "third"]
    assert updated["configurable"]["checkpoint_id"] != after_first.config["configurable"]["checkpoint_id"]
    assert not history_is_one_line(pg_url, "branches")  # two deliberate branches from one checkpoint
    assert len(effects(tmp_path)) == 2  # a replay from a past checkpoint is a new branch: it runs again


async def test_async_writes_are_fenced_too(pg_url: str) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "async-fenced", "checkpoint_ns": ""}}
    async with open_checkpointer(pg_url) as saver, thread_lease(pg_url, "async-fenced"):
        first = await saver.aput(config, _checkpoint("1"), {"step": 0}, {})
        raise_epoch(pg_url, "async-fenced")
        with pytest.raises(LeaseLostError):
            await saver.aput(first, _checkpoint("2"), {"step": 1}, {})
        with pytest.raises(LeaseLostError):
            await saver.aput_writes(first, [("a", 1)], "task")


def test_writes_without_a_lease_are_not_fenced(pg_url: str) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "free", "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as saver:
        with thread_lease(pg_url, "free"):
            first = saver.put(config, _checkpoint("1"), {"step": 0}, {})
        raise_epoch(pg_url, "free")
        saver.put(first, _checkpoint("2"), {"step": 1}, {})  # released: no fence applies
    with open_checkpointer(pg_url) as saver:
        assert [c.checkpoint["id"] for c in saver.list(config)] == ["2", "1"]


# -- runners in processes ---------------------------------------------------------------------------


def test_a_terminated_lease_connection_is_taken_back_when_nobody_took_the_thread(
    pg_url: str, tmp_path: Path
) -> None:
    runner = Runner(pg_url, "taken-back", tmp_path, "start")
    runner.wait_for("first")
    [holder] = lock_holders(pg_url, "taken-back")
    terminate(pg_url, [holder])
    deadline = time.monotonic() + 20
    while lock_holders(pg_url, "taken-back") in ([], [holder]):
        assert time.monotonic() < deadline, "the runner did not take its lease back"
        time.sleep(0.05)
    (tmp_path / "gate").touch()
    assert runner.finish() == 0, runner.stderr()
    assert runner.lines == ["asking", "leased 1", "first", "second", "third", "done"]
    assert len(effects(tmp_path)) == 1
    assert history_is_one_line(pg_url, "taken-back")


def test_a_runner_whose_thread_was_taken_over_stops_and_the_new_runner_runs_alone(
    pg_url: str, tmp_path: Path
) -> None:
    first_runner = Runner(pg_url, "taken-over", tmp_path, "start")
    first_runner.wait_for("first")
    raise_epoch(pg_url, "taken-over")  # a takeover happened while the lease connection was down:
    terminate(pg_url, lock_holders(pg_url, "taken-over"))  # the lease cannot be taken back
    second_runner = Runner(pg_url, "taken-over", tmp_path, "resume")
    second_runner.wait_for("leased 3")
    (tmp_path / "gate").touch()
    assert first_runner.finish() == LEASE_LOST, first_runner.stderr()
    assert first_runner.lines == ["asking", "leased 1", "first", "lease lost"]
    assert second_runner.finish() == 0, second_runner.stderr()
    assert second_runner.lines == ["asking", "leased 3", "first", "second", "third", "done"]
    assert len(effects(tmp_path)) == 1
    assert final_visits(pg_url, "taken-over", tmp_path) == ["first", "second", "third"]
    assert history_is_one_line(pg_url, "taken-over")


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path_factory.mktemp("fencing") / "pg")
    yield server
    server.close()


def test_a_postgres_restart_mid_run_never_gives_a_thread_two_runners(
    restartable: OwnPostgres, tmp_path: Path
) -> None:
    """The issue's reproduction: A is inside a node when Postgres crash-restarts; B then asks for the
    lease and continues the thread. Either A takes its lease back (B waits, then finds the thread
    done) or B takes it first (A is fenced): the effect happens once either way."""
    url = restartable.url
    a = Runner(url, "restarted", tmp_path, "start")
    a.wait_for("first")
    restartable.restart("immediate")
    b = Runner(url, "restarted", tmp_path, "resume")
    b.wait_for("asking")
    time.sleep(0.5)  # B polls for the lease meanwhile
    (tmp_path / "gate").touch()
    a_code, b_code = a.finish(), b.finish()
    assert a_code in (0, LEASE_LOST), a.stderr()
    assert b_code == 0, b.stderr()
    assert len(effects(tmp_path)) == 1
    assert final_visits(url, "restarted", tmp_path) == ["first", "second", "third"]
    assert history_is_one_line(url, "restarted")
    if a_code == LEASE_LOST:  # B took over: it ran the rest
        assert "second" in b.lines and "second" not in a.lines
    else:  # A took its lease back and finished: B found nothing left to run
        assert b.lines[-1] == "done" and "second" not in b.lines
