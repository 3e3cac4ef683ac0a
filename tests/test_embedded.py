import os
import subprocess
import sys
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


def test_last_user_stops_the_server_even_after_a_killed_user(tmp_path: Path) -> None:
    data = tmp_path / "lifecycle"
    start = f"from durable_graph import embedded; embedded.start({str(data)!r});"
    subprocess.run([sys.executable, "-c", start], check=True)
    assert not _server_running(data)

    killed = subprocess.Popen(
        [sys.executable, "-c", start + "print('up', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert killed.stdout is not None and killed.stdout.readline().strip() == "up"
    killed.kill()
    killed.wait()
    assert _server_running(data)  # a SIGKILLed user cannot stop it ...

    subprocess.run([sys.executable, "-c", start], check=True)
    assert not _server_running(data)  # ... but the next last user does


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
    other = subprocess.Popen(
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
    assert other.stdout is not None and other.stdout.readline().strip() == "up"
    embedded.start(data)
    embedded.release(data)
    assert _server_running(data)  # the other process still uses it
    other.communicate("")  # the other process exits normally: the last user stops it
    assert not _server_running(data)
