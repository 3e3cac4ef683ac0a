"""Every backend passes every capability of LangGraph's checkpointer conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from durable_graph.checkpointers import open_checkpointer
from durable_graph.encryption import Keys

CAPABILITIES = {
    "put",
    "put_writes",
    "get_tuple",
    "list",
    "delete_thread",
    "delete_for_runs",
    "copy_thread",
    "prune",
}


def _backend_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    backend = backend.removesuffix(" encrypted")
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'conformance.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", "postgres", "sqlite encrypted", "postgres encrypted"]
)
async def test_backend_passes_every_capability(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert {c.value for c in ALL_CAPABILITIES} == CAPABILITIES, "the suite's capability list changed"
    url = _backend_url(backend, tmp_path, request)
    keys = Keys(b"k" * 32) if backend.endswith("encrypted") else None

    async def saver() -> AsyncIterator[BaseCheckpointSaver]:
        async with open_checkpointer(url, keys=keys) as opened:
            yield opened

    registered = checkpointer_test(name=f"durable-graph {backend}")(saver)
    report = await validate(registered)

    problems = []
    for capability in sorted(CAPABILITIES):
        result = report.results.get(capability)
        if result is None or not result.detected:
            problems.append(f"{capability}: not detected (the async method is not overridden)")
        elif result.passed is not True:
            problems += [f"{capability}: {failure}" for failure in result.failures] or [
                f"{capability}: failed"
            ]
    if problems:
        report.print_report()
    assert not problems, f"{backend} fails conformance:\n" + "\n".join(problems)
    assert report.conformance_level() == "FULL"
    assert all(report.results[c].tests_passed > 0 for c in CAPABILITIES)
