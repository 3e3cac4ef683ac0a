"""Every example under ``examples/`` (the CLI's) runs, here on SQLite or memory to stay fast."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from durable_graph.cli import app

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, url: str | None, tmp_path: Path) -> str:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # temp workdirs land here
    env.pop("DURABLE_GRAPH_URL", None)
    if url is None:  # the default, embedded://, in a data dir of the test's own
        env["DURABLE_GRAPH_HOME"] = str(tmp_path / "home")
    else:
        env["DURABLE_GRAPH_URL"] = url
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'examples.db'}"


def test_demo_then_the_printed_cli_commands_finish_it(url: str, tmp_path: Path) -> None:
    out = run_example("demo.py", url=url, tmp_path=tmp_path)
    assert "final answer: 120 + 64 + 9 = 193" in out
    assert "waiting for approval: write_report" in out
    approve = re.search(r"durable-graph approve (\w+)", out)
    assert approve is not None, out
    assert "\n  durable-graph serve  " in out  # the web inbox (the URL is the default here), see tests/web
    result = CliRunner().invoke(app, ["approve", approve.group(1), "--url", url])
    assert result.exit_code == 0, result.output
    assert "done thread" in result.stdout
    (workdir,) = tmp_path.glob("durable-graph-demo-*")
    assert len(list((workdir / "reports").glob("*.md"))) == 1


def test_demo_on_the_embedded_default_leaves_no_server_running(tmp_path: Path) -> None:
    out = run_example("demo.py", url=None, tmp_path=tmp_path)
    assert "checkpoints: embedded://" in out
    assert "waiting for approval: write_report" in out
    data_dir = tmp_path / "home" / "pg"
    assert (data_dir / "PG_VERSION").exists()
    assert not (data_dir / "postmaster.pid").exists()  # the server stopped with its last process


def test_research_agent(url: str, tmp_path: Path) -> None:
    out = run_example("research_agent.py", url=url, tmp_path=tmp_path)
    assert "approved by the script" in out
    assert "--- reports/report-search-for-apples" in out
    assert "market.md:3: Apples sell for 2.10 a kilo" in out


def test_approval_flow(url: str, tmp_path: Path) -> None:
    out = run_example("approval_flow.py", "--decision", "edit", url=url, tmp_path=tmp_path)
    assert "[first process]  thread" in out and "is waiting" in out
    assert "[second process] thread" in out and "is now done" in out
    assert "reports written: ['apples-edited.md']" in out


def test_swap_backends(tmp_path: Path) -> None:
    out = run_example(
        "swap_backends.py",
        "memory://",
        f"sqlite:///{tmp_path / 'swap.db'}",
        url="memory://",
        tmp_path=tmp_path,
    )
    assert "MemoryCheckpointer" in out and "SqliteCheckpointer" in out
    assert out.count("answer: 6 * 7 + 1 = 43") == 2
    assert "same answer on every backend" in out
