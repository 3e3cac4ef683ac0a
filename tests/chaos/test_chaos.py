"""The chaos run at a CI-sized count: agent threads SIGKILLed at random moments (and Postgres crash-
restarted while they run) all finish with the undisturbed result, no durable tool re-run outside the
documented window, no checkpoint missing or corrupt, and no thread advanced by two runners, forked or
set back. Larger runs: ``python -m tests.chaos.run_chaos --help``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, empty_checkpoint

from tests.chaos.run_chaos import ORDER_KEY, Report, check_history, main

pytestmark = pytest.mark.slow


def test_kills_and_postgres_restarts_lose_nothing(tmp_path: Path) -> None:
    args = [
        "--seed",
        "7",
        "--threads",
        "4",
        "--kills",
        "6",
        "--restart-every",
        "2",
        "--workdir",
        str(tmp_path),
    ]
    report = main(args)
    assert report.unfinished_threads == []
    assert report.state_mismatches == []
    assert report.checkpoint_problems == []
    assert report.tool_reruns_unexplained == 0
    assert report.two_runner_threads == report.forked_threads == report.threads_gone_backwards == []
    assert report.kills >= 3 and report.postgres_restarts >= 1
    assert report.checkpoints_checked > 4 * 4


def test_the_history_checks_catch_two_runners_a_fork_and_a_lost_step() -> None:
    report = Report()
    root = _item("1", None, 0, 3)
    check_history("interleaved", [root, _item("2", "1", 1, 9), _item("3", "2", 2, 3)], report)
    check_history("forked", [root, _item("2", "1", 1, 3), _item("3", "1", 1, 3)], report)
    check_history("backwards", [root, _item("2", "1", 5, 3), _item("3", "1", 1, 4)], report)
    check_history("fine", [root, _item("2", "1", 1, 3), _item("3", "2", 2, 4)], report)
    assert report.two_runner_threads == ["interleaved"]
    assert report.forked_threads == ["forked", "backwards"]
    assert report.threads_gone_backwards == ["backwards"]


def _config(checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}


def _item(checkpoint_id: str, parent: str | None, step: int, runner: int) -> CheckpointTuple:
    metadata: Any = {"step": step, ORDER_KEY: runner}
    parent_config = _config(parent) if parent is not None else None
    return CheckpointTuple(_config(checkpoint_id), empty_checkpoint(), metadata, parent_config)


def test_kills_lose_nothing_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chaos.db'}"
    report = main(["--seed", "8", "--threads", "3", "--kills", "4", "--url", url, "--workdir", str(tmp_path)])
    assert report.losses == 0
    assert report.kills >= 2
