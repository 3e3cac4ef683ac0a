"""The bundled demo tools: safe arithmetic and file tools that cannot leave their work dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.tools import BaseTool

from durable_graph.errors import PathOutsideWorkdirError
from durable_graph.graphs import demo_tools, needs_approval
from durable_graph.graphs.calculator import evaluate, format_number


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("Alpha line\nsecond line mentions BETA\n")
    (root / "b.txt").write_text("beta again\n")
    (tmp_path / "secret.txt").write_text("outside the workdir: beta\n")
    return root


def tools_by_name(workdir: Path) -> dict[str, BaseTool]:
    return {t.name: t for t in demo_tools(workdir)}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("6 / 3", "2"),
        ("-2 ** 2", "-4"),
        ("7 // 2", "3"),
        ("7 % 4", "3"),
        ("2 ** 10", "1024"),
        ("0.1 + 0.2", "0.30000000000000004"),
    ],
)
def test_calculator_evaluates_arithmetic(expression: str, expected: str) -> None:
    assert tools_by_name(Path("."))["calculator"].invoke({"expression": expression}) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "x + 1",
        "[1, 2]",
        "'a' * 3",
        "2 ** 100000",
        "1 if 1 else 2",
        "abs(-1)",
        "1 +",
    ],
)
def test_calculator_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ValueError):
        evaluate(expression)


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6), st.sampled_from(["+", "-", "*"]))
def test_calculator_agrees_with_python_on_integers(a: int, b: int, op: str) -> None:
    expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert evaluate(f"{a} {op} ({b})") == expected
    assert format_number(expected) == str(expected)


def test_list_files_lists_the_workdir(workdir: Path) -> None:
    assert tools_by_name(workdir)["list_files"].invoke({}) == "b.txt\ndocs/a.md"
    assert tools_by_name(workdir)["list_files"].invoke({"path": "docs"}) == "docs/a.md"


def test_read_file_reads_inside_the_workdir(workdir: Path) -> None:
    assert tools_by_name(workdir)["read_file"].invoke({"path": "docs/a.md"}).startswith("Alpha line\n")


def test_search_files_finds_lines_case_insensitively(workdir: Path) -> None:
    found = tools_by_name(workdir)["search_files"].invoke({"pattern": "beta"})
    assert found == "b.txt:1: beta again\ndocs/a.md:2: second line mentions BETA"
    assert tools_by_name(workdir)["search_files"].invoke({"pattern": "gamma"}) == "no matches for 'gamma'"


@pytest.mark.parametrize("path", ["../secret.txt", "docs/../../secret.txt", "/etc/passwd", "/"])
@pytest.mark.parametrize("tool", ["read_file", "list_files", "search_files"])
def test_file_tools_refuse_paths_outside_the_workdir(workdir: Path, tool: str, path: str) -> None:
    args = {"path": path, "pattern": "beta"} if tool == "search_files" else {"path": path}
    with pytest.raises(PathOutsideWorkdirError, match="outside the workdir"):
        tools_by_name(workdir)[tool].invoke(args)


def test_symlinks_leading_out_of_the_workdir_are_refused(workdir: Path) -> None:
    os.symlink(workdir.parent / "secret.txt", workdir / "link.txt")
    with pytest.raises(PathOutsideWorkdirError):
        tools_by_name(workdir)["read_file"].invoke({"path": "link.txt"})
    assert "secret" not in tools_by_name(workdir)["search_files"].invoke({"pattern": "outside"})
    assert "link.txt" not in tools_by_name(workdir)["list_files"].invoke({})


def test_missing_files_and_a_missing_workdir_are_named(workdir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        tools_by_name(workdir)["read_file"].invoke({"path": "nope.txt"})
    with pytest.raises(NotADirectoryError, match="missing"):
        demo_tools(workdir / "missing")


def test_write_report_writes_markdown_and_never_overwrites(workdir: Path) -> None:
    write = tools_by_name(workdir)["write_report"]
    assert needs_approval(write)
    assert (
        write.invoke({"title": "Weekly Status", "content": "all good"})
        == "wrote reports/weekly-status.md (26 bytes)"
    )
    assert (workdir / "reports" / "weekly-status.md").read_text() == "# Weekly Status\n\nall good\n"
    # the same report again is the same file; a different one with the same title gets a new name
    assert write.invoke({"title": "Weekly Status", "content": "all good"}).startswith(
        "wrote reports/weekly-status.md"
    )
    assert write.invoke({"title": "Weekly Status", "content": "changed"}).startswith(
        "wrote reports/weekly-status-2.md"
    )
    assert (workdir / "reports" / "weekly-status.md").read_text() == "# Weekly Status\n\nall good\n"


def test_only_write_report_requires_approval(workdir: Path) -> None:
    assert [t.name for t in demo_tools(workdir) if needs_approval(t)] == ["write_report"]
