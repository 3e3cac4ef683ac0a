import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from durable_graph import embedded
from durable_graph.errors import BackendUnavailableError


def test_embedded_server_has_pgvector(tmp_path: Path) -> None:
    url = embedded.start(tmp_path / "data")
    assert embedded.start(tmp_path / "data") == url  # reused within the process
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        dist = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()
    assert dist == (1.0,)


def test_two_processes_share_one_server(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    script = (
        "import sys, psycopg; from durable_graph import embedded;"
        "url = embedded.start(sys.argv[1]);"
        "print(psycopg.connect(url).execute('select pg_postmaster_start_time()').fetchone()[0])"
    )
    url = embedded.start(data)  # this process keeps it alive
    with psycopg.connect(url) as conn:
        started = str(conn.execute("select pg_postmaster_start_time()").fetchone()[0])
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, str(data)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert outputs == [started, started]


def test_data_dir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(BackendUnavailableError, match="cannot create data dir"):
        embedded.start(not_a_dir / "data")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_dir_is_a_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(BackendUnavailableError, match="not writable"):
        embedded.start(locked / "data")


def _server_running(data: Path) -> bool:
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _watchdog_pid(data: Path) -> int:
    """The pid the data dir's watchdog wrote (it writes it just after it starts)."""
    path = data / embedded.WATCHDOG_FILE
    deadline = time.monotonic() + 30
    while not path.read_text().strip():
        assert time.monotonic() < deadline, "no watchdog started"
        time.sleep(0.05)
    return int(path.read_text())


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _user(data: Path) -> subprocess.Popen[str]:
    """A process that uses the server in ``data`` until its stdin closes."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from durable_graph import embedded; embedded.start({str(data)!r});"
            "print('up', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "up"
    return process


def test_the_last_user_stops_the_server_and_its_watchdog(tmp_path: Path) -> None:
    data = tmp_path / "lifecycle"
    user = _user(data)
    postmaster, watchdog = int((data / "postmaster.pid").read_text().split()[0]), _watchdog_pid(data)
    user.communicate("")  # exits normally
    assert not _pid_alive(postmaster)
    _wait_until(lambda: not _pid_alive(watchdog))


def test_a_sigkilled_last_user_is_noticed_by_the_watchdog(tmp_path: Path) -> None:
    data = tmp_path / "killed"
    killed = _user(data)
    postmaster, watchdog = int((data / "postmaster.pid").read_text().split()[0]), _watchdog_pid(data)
    killed.kill()
    killed.wait()
    _wait_until(lambda: not _pid_alive(postmaster) and not _pid_alive(watchdog))
    assert not (data / "postmaster.pid").exists()  # a clean stop, not a crash


def test_the_watchdog_leaves_a_server_that_is_still_used(tmp_path: Path) -> None:
    data = tmp_path / "used"
    killed = _user(data)
    embedded.start(data)  # this process uses it too
    try:
        watchdog = _watchdog_pid(data)
        killed.kill()
        killed.wait()
        time.sleep(3 * embedded.WATCH_INTERVAL)
        assert _server_running(data) and _pid_alive(watchdog)
    finally:
        embedded.release(data)
    assert not _server_running(data)
    _wait_until(lambda: not _pid_alive(watchdog))


def test_release_stops_the_server_when_this_process_was_its_last_user(tmp_path: Path) -> None:
    data = tmp_path / "released"
    url = embedded.start(data)
    assert _server_running(data)
    embedded.release(data)
    assert not _server_running(data)
    assert embedded.start(data) == url  # joined (and started) again
    assert _server_running(data)
    embedded.release(data)
    assert not _server_running(data)
    embedded.release(data)  # releasing twice is harmless


def test_release_leaves_the_server_to_its_other_users(tmp_path: Path) -> None:
    data = tmp_path / "shared_release"
    other = _user(data)
    embedded.start(data)
    embedded.release(data)
    assert _server_running(data)  # the other process still uses it
    other.communicate("")  # the other process exits normally: the last user stops it
    assert not _server_running(data)
