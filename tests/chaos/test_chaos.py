"""The chaos run at a CI-sized count: agent threads SIGKILLed at random moments (and Postgres crash-
restarted once) all finish with the undisturbed result, no durable tool re-run outside the documented
window, and no checkpoint missing or corrupt. Larger runs: ``python -m tests.chaos.run_chaos --help``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.run_chaos import main

pytestmark = pytest.mark.slow


def test_kills_and_a_postgres_restart_lose_nothing(tmp_path: Path) -> None:
    report = main(
        ["--seed", "7", "--threads", "4", "--kills", "6", "--restart-postgres", "--workdir", str(tmp_path)]
    )
    assert report.unfinished_threads == []
    assert report.state_mismatches == []
    assert report.checkpoint_problems == []
    assert report.tool_reruns_unexplained == 0
    assert report.kills >= 3 and report.postgres_restarts == 1
    assert report.checkpoints_checked > 4 * 4


def test_kills_lose_nothing_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chaos.db'}"
    report = main(["--seed", "8", "--threads", "3", "--kills", "4", "--url", url, "--workdir", str(tmp_path)])
    assert report.losses == 0
    assert report.kills >= 2
