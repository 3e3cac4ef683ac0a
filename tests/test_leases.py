"""One runner per thread: the lease is exclusive across processes and dies with its holder."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_graph.errors import BackendUnavailableError, ThreadBusyError
from durable_graph.leases import advisory_key, thread_lease

HOLDER = textwrap.dedent(
    """
    import sys, time
    from durable_graph.leases import thread_lease
    with thread_lease(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        sys.stdin.readline()  # hold until told to finish (or killed)
    print("released", flush=True)
    """
)


def start_holder(url: str, thread_id: str) -> subprocess.Popen[str]:
    """A process that holds the lease of ``thread_id`` until its stdin gets a line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, thread_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture(params=["postgres", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_url")
    else:
        yield f"sqlite:///{tmp_path / 'leases.db'}"


THREAD = "thread-1 'quoted'; -- and more"


def test_second_process_gets_thread_busy_and_lease_dies_with_holder(url: str) -> None:
    holder = start_holder(url, THREAD)
    try:
        busy = "is busy: another process is running it"
        with pytest.raises(ThreadBusyError, match=busy) as info, thread_lease(url, THREAD):
            pytest.fail("entered a lease another process holds")
        assert info.value.thread_id == THREAD
        waited = r"waited \d+\.\ds"
        with pytest.raises(ThreadBusyError, match=waited), thread_lease(url, THREAD, wait=True, timeout=0.3):
            pytest.fail("entered a lease another process holds")
        with thread_lease(url, "another thread"):
            pass  # other threads are free
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder could not release anything: its connection / file descriptor did.
    with thread_lease(url, THREAD, wait=True, timeout=30) as lease:
        assert lease.thread_id == THREAD


def test_waiter_gets_the_lease_when_the_holder_finishes(url: str) -> None:
    holder = start_holder(url, THREAD)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("done\n")
    holder.stdin.flush()
    with thread_lease(url, THREAD, wait=True, timeout=30):
        assert holder.stdout.readline().strip() == "released"
    assert holder.wait() == 0


async def test_async_form_is_exclusive_with_sync_form(url: str) -> None:
    async with thread_lease(url, "async-thread"):
        with pytest.raises(ThreadBusyError), thread_lease(url, "async-thread"):
            pass
        with pytest.raises(ThreadBusyError):
            async with thread_lease(url, "async-thread", wait=True, timeout=0.1):
                pass
    async with thread_lease(url, "async-thread"):
        pass  # released on exit


async def test_async_waiter_waits_for_the_holder(url: str) -> None:
    async def hold_briefly(ready: asyncio.Event) -> None:
        async with thread_lease(url, "handover"):
            ready.set()
            await asyncio.sleep(0.3)

    ready = asyncio.Event()
    task = asyncio.create_task(hold_briefly(ready))
    await ready.wait()
    async with thread_lease(url, "handover", wait=True, timeout=30):
        assert task.done()
    await task


def test_lease_is_released_when_the_body_raises(url: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), thread_lease(url, "raiser"):
        raise RuntimeError("boom")
    with thread_lease(url, "raiser"):
        pass


def test_memory_lease_is_exclusive_in_process() -> None:
    with thread_lease("memory://", "m"):
        with pytest.raises(ThreadBusyError), thread_lease("memory://", "m"):
            pass
        with thread_lease("memory://", "other"):
            pass
    with thread_lease("memory://", "m"):
        pass


def test_sqlite_lock_files_live_next_to_the_database_and_are_removed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with thread_lease(url, "t"):
        files = list((tmp_path / "x.db.leases").iterdir())
        assert len(files) == 1
        assert files[0].read_text() == f"{os.getpid()} t\n"
    assert list((tmp_path / "x.db.leases").iterdir()) == []


@pytest.mark.parametrize("thread_id", ["visible", "b"])  # a positive and a negative key
def test_postgres_lease_is_an_advisory_lock_on_the_thread_key(pg_url: str, thread_id: str) -> None:
    import psycopg

    with thread_lease(pg_url, thread_id), psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (advisory_key(thread_id),),
        ).fetchone()
        assert rows == (1,)


@pytest.mark.parametrize(
    ("thread_id", "timeout", "message"),
    [("", None, "non-empty string"), (None, None, "non-empty string"), ("t", -1, "timeout")],
)
def test_bad_arguments_are_named(thread_id: object, timeout: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        thread_lease("memory://", thread_id, timeout=timeout)  # type: ignore[arg-type]


def test_unreachable_postgres_is_a_clear_error() -> None:
    lease = thread_lease("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "t")
    with pytest.raises(BackendUnavailableError, match="cannot take the lease of thread 't'"), lease:
        pass


def test_an_open_checkpointer_names_the_same_lease_as_its_url(url: str) -> None:
    from durable_graph.checkpointers import open_checkpointer

    with open_checkpointer(url) as saver, thread_lease(saver, "by-saver"):
        second = thread_lease(url, "by-saver")
        with pytest.raises(ThreadBusyError), second:
            pass


EXITS_HOLDING = textwrap.dedent(
    """
    import atexit, sys, threading
    from durable_graph.errors import LeaseLostError

    def keeper_running():
        return any(t.name == "durable-graph lease keeper" for t in threading.enumerate())

    def at_exit():  # registered before the lease sessions' own exit handler, so it runs after it
        try:
            lease.check()
        except LeaseLostError as exc:
            print("lost:", exc, flush=True)
        print("keeper at exit:", keeper_running(), flush=True)

    atexit.register(at_exit)
    from durable_graph.leases import thread_lease
    lease = thread_lease(sys.argv[1], sys.argv[2]).__enter__()  # still held when the process exits
    print("keeper while held:", keeper_running(), flush=True)
    """
)


def test_an_exiting_process_loses_its_leases_and_stops_their_keeper_first(pg_url: str) -> None:
    # A thread still inside the database driver when the interpreter shuts down can crash it.
    done = subprocess.run(
        [sys.executable, "-c", EXITS_HOLDING, pg_url, THREAD],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "keeper while held: True"
    assert "the process is exiting" in lines[1]
    assert lines[2] == "keeper at exit: False"
    with thread_lease(pg_url, THREAD):
        pass


def test_a_closed_lease_session_loses_its_leases_and_the_next_lease_opens_a_new_one(pg_url: str) -> None:
    import psycopg

    from durable_graph.leases import postgres

    session = postgres.session_for(pg_url)
    fence = session.take("closing", advisory_key("closing"))
    assert fence is not None
    session.close("closed by the test")
    assert fence.state == "lost"
    with pytest.raises(psycopg.OperationalError, match="the lease session was closed: closed by the test"):
        session.take("closing", advisory_key("closing"))
    with thread_lease(pg_url, "closing") as lease:  # the lock died with the closed connection
        assert lease.epoch == fence.epoch + 1
