"""``durable-graph prune``: compacting threads to their latest checkpoint and deleting old threads."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from durable_graph.cli import app
from durable_graph.durable_tools import open_tool_log


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def checkpoints(url: str, thread_id: str) -> int:
    result = cli("history", thread_id, "--json", "--url", url)
    assert result.exit_code == 0, result.output
    return len(json.loads(result.stdout))


def statuses(url: str) -> dict[str, str]:
    return {t["thread_id"]: t["status"] for t in json.loads(cli("threads", "--json", "--url", url).stdout)}


def test_prune_keeps_threads_usable_and_deletes_old_ones(url: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("42 apples\n")
    work = ["--workdir", str(tmp_path), "--url", url]
    assert cli("run", "what is 1 + 2?", "--thread", "p-done", *work).exit_code == 0
    assert (
        cli("run", "search for apples in my files and write a report", "--thread", "p-wait", *work).exit_code
        == 4
    )
    sizes = {t: checkpoints(url, t) for t in ("p-done", "p-wait")}
    assert min(sizes.values()) > 1

    dry = cli("prune", "--keep", "1", "--older-than", "0s", "--dry-run", "--url", url)
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 thread(s)" in dry.stdout
    assert {t: checkpoints(url, t) for t in sizes} == sizes

    kept = cli("prune", "--keep", "1", "--older-than", "30d", "--url", url)
    assert kept.exit_code == 0, kept.output
    assert "deleted 0 thread(s)" in kept.stdout
    assert [checkpoints(url, t) for t in sizes] == [1, 1]
    assert statuses(url) == {"p-done": "done", "p-wait": "interrupted"}
    # the pending approval survived compaction
    approved = cli("approve", "p-wait", "--url", url)
    assert approved.exit_code == 0, approved.output
    assert statuses(url) == {"p-done": "done", "p-wait": "done"}

    assert tool_records(url, "p-done")  # the CLI's tools are durable: their results are recorded

    gone = cli("prune", "--older-than", "0s", "--url", url)
    assert gone.exit_code == 0, gone.output
    assert "deleted 2 thread(s)" in gone.stdout
    assert statuses(url) == {}
    assert cli("show", "p-done", "--url", url).exit_code == 3
    assert tool_records(url, "p-done") == tool_records(url, "p-wait") == []


def tool_records(url: str, thread_id: str) -> list:
    with open_tool_log(url) as log:
        return log.records(thread_id)
