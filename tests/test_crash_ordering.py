"""A task whose writes were stored is not run again on resume, even if its step never finished.

``fast`` and ``slow`` run in one superstep with ``durability="sync"``. ``fast`` finishes and its
writes are stored with ``put_writes``; the process is killed while ``slow`` still runs, so the step's
checkpoint is never written. On resume only ``slow`` may run again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_graph.checkpointers import open_checkpointer
from tests.chaos import worker
from tests.chaos.worker import count, run_until


@pytest.fixture(params=["postgres", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_url")
    else:
        yield f"sqlite:///{tmp_path / 'ordering.db'}"


def test_finished_parallel_task_is_not_rerun_after_a_crash(url: str, tmp_path: Path) -> None:
    thread = "ordering"
    run_until("parallel", url, thread, tmp_path, "fast-stored")
    assert (count(tmp_path, "fast"), count(tmp_path, "slow"), count(tmp_path, "join")) == (1, 1, 0)
    with open_checkpointer(url) as saver:
        stored = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
        assert stored is not None
        assert stored.metadata["step"] == 0  # the step fast and slow ran in was never checkpointed
        assert [w[2] for w in stored.pending_writes or [] if w[1] == "log"] == [["fast"]]

    final = worker.run("parallel", url, thread, tmp_path, None)

    assert sorted(final["log"]) == ["fast", "join", "slow"]
    assert count(tmp_path, "fast") == 1, "the finished task ran again on resume"
    assert count(tmp_path, "slow") == 2  # the killed task re-runs: node code is at-least-once
    assert count(tmp_path, "join") == 1
