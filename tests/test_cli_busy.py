"""One runner per thread from the CLI: a busy thread exits with 7, or is waited for with --wait."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from durable_graph.cli import app

HOLD = (
    "import sys, time; from durable_graph.leases import thread_lease\n"
    "with thread_lease(sys.argv[1], sys.argv[2]):\n"
    "    print('held', flush=True); time.sleep(float(sys.argv[3]))\n"
)


def test_busy_thread_exits_7_and_wait_waits_for_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    (tmp_path / "notes.txt").write_text("42 apples\n")
    task = "search for apples in my files and write a report"
    started = CliRunner().invoke(
        app, ["run", task, "--thread", "busy", "--workdir", str(tmp_path), "--url", url]
    )
    assert started.exit_code == 4, started.output

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, "busy", "8"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = CliRunner().invoke(app, ["approve", "busy", "--url", url])
        assert refused.exit_code == 7, refused.output
        assert "busy" in refused.stderr
        assert holder.poll() is None  # still held: the refusal did not just outlast the holder

        # the holder still has seconds to go: without waiting this would be refused again
        waited = CliRunner().invoke(app, ["approve", "busy", "--wait", "--url", url])
        assert waited.exit_code == 0, waited.output
        assert holder.wait(10) == 0
    finally:
        holder.kill()
        holder.wait()
