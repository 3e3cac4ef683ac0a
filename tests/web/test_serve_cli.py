"""``durable-graph serve`` as a command: on the embedded Postgres, stopped by SIGTERM in the middle of
a decision's run (the run finishes its node, the embedded server is released), and its options."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from durable_graph import embedded
from durable_graph.checkpointers import open_checkpointer
from durable_graph.cli import app
from durable_graph.runs.status import latest, summarize
from tests.web.conftest import serving, start_waiting
from tests.web.tools import RELEASE, STARTED


def postgres_running(data: Path) -> bool:
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        Path(f"/proc/{int(pid_file.read_text().split()[0])}").stat()
    except FileNotFoundError:
        return False
    return True


def test_sigterm_lets_the_run_finish_its_node_and_releases_the_embedded_postgres(
    tmp_path: Path, workdir: Path
) -> None:
    data = tmp_path / "pg"
    url = f"embedded://{data}"
    thread_id = start_waiting(url, workdir, tools="tests.web.tools:held_report_tools")
    embedded.release(data)  # this process is done with it: the server process starts it again
    assert not postgres_running(data)

    with serving(url, env={"DURABLE_GRAPH_TOKEN": "from-the-environment"}) as server:
        assert server.printed[1] == f"log in at {server.base}/login with the token given"
        bearer = {"authorization": "Bearer from-the-environment"}
        waiting = httpx.get(f"{server.base}/api/inbox", headers=bearer).json()["items"]
        assert [i["thread"] for i in waiting] == [thread_id]
        decided = httpx.post(
            f"{server.base}/api/threads/{thread_id}/decision", json={"action": "approve"}, headers=bearer
        )
        assert decided.status_code == 202, decided.text
        deadline = time.monotonic() + 60
        while not (workdir / STARTED).exists():
            assert time.monotonic() < deadline, "the tool never started"
            time.sleep(0.05)

        server.process.terminate()  # SIGTERM while the tool's node runs
        assert server.process.stdout is not None
        stopping = server.process.stdout.readline().strip()
        assert stopping == "stopping; 1 run(s) of decisions stop after the node they are in"
        (workdir / RELEASE).write_text("go")
        printed, _ = server.process.communicate(timeout=90)
    assert (server.process.returncode, printed.strip()) == (0, "inbox stopped")
    assert not postgres_running(data)  # released: it was the last user

    with open_checkpointer(url) as saver:
        summary = summarize(latest(saver, thread_id))
    embedded.release(data)
    assert (summary.status, summary.next) == ("running", ["plan"])  # the tool's node was kept
    assert len(list((workdir / "reports").iterdir())) == 1


def test_serve_refuses_an_empty_token_and_an_unknown_backend() -> None:
    empty = CliRunner().invoke(app, ["serve", "--token", " ", "--url", "memory://"])
    assert empty.exit_code == 2 and "--token" in empty.output and "must not be empty" in empty.output
    bad_url = CliRunner().invoke(app, ["serve", "--url", "nosuch://x"])
    assert bad_url.exit_code == 2 and "unknown backend 'nosuch'" in bad_url.output
