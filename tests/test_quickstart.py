"""The quickstart example really resumes a crashed thread from another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_quickstart_resumes_the_crashed_thread(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'quickstart.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), "--url", url],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "crashing in the middle of report!" in out
    assert "worker exited with code 1" in out
    assert "next node to run: ['report']" in out
    assert "nodes run again by this process: ['report']" in out


def test_quickstart_refuses_memory_url() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), "--url", "memory://"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "memory:// lives inside one process" in result.stderr
