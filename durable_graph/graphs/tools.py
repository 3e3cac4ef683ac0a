"""Bundled demo tools that do real work offline: arithmetic and files confined to a work dir."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.tools import BaseTool, StructuredTool

from durable_graph.errors import PathOutsideWorkdirError
from durable_graph.graphs import calculator as calc
from durable_graph.graphs.approval import requires_approval

MAX_READ_CHARS = 20_000
MAX_MATCHES = 50
MAX_LISTED = 200
REPORTS_DIR = "reports"


def calculator_tool() -> BaseTool:
    """The ``calculator`` tool: safe arithmetic, no ``eval``."""

    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression with + - * / // % ** and parentheses; returns the result."""
        return calc.format_number(calc.evaluate(expression))

    return StructuredTool.from_function(calculator)


class Workdir:
    """A directory the file tools may not leave."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"workdir {str(root)!r} is not an existing directory")

    def resolve(self, path: str) -> Path:
        """``path`` (relative to the workdir) as an absolute path, refusing anything outside it."""
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            raise PathOutsideWorkdirError(f"path {path!r} is outside the workdir; use a path inside it")
        return target

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def files(self, path: str) -> list[Path]:
        base = self.resolve(path)
        if base.is_file():
            return [base]
        if not base.is_dir():
            raise FileNotFoundError(f"no file or directory {path!r} in the workdir")
        # resolving drops symlinks that lead out of the workdir and duplicates of files linked inside it
        found = (p.resolve() for p in sorted(base.rglob("*")))
        return list(dict.fromkeys(p for p in found if p.is_file() and p.is_relative_to(self.root)))


def file_tools(workdir: str | Path) -> list[BaseTool]:
    """``list_files``, ``read_file``, ``search_files`` and ``write_report`` confined to ``workdir``."""
    wd = Workdir(workdir)

    def list_files(path: str = ".") -> str:
        """List the files under a directory of the workdir (default: all of it), one path per line."""
        names = [wd.relative(p) for p in wd.files(path)]
        shown = "\n".join(names[:MAX_LISTED])
        more = f"\n... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        return (shown + more) if names else f"no files under {path!r}"

    def read_file(path: str) -> str:
        """Read a text file of the workdir."""
        target = wd.resolve(path)
        if not target.is_file():
            raise FileNotFoundError(f"no file {path!r} in the workdir")
        text = target.read_text(encoding="utf-8", errors="replace")
        if len(text) > MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n... [truncated, {len(text)} characters in all]"
        return text

    def search_files(pattern: str, path: str = ".") -> str:
        """Find lines containing `pattern` (case-insensitive) in the workdir's files: `file:line: text`."""
        if not pattern.strip():
            raise ValueError("pattern must not be empty")
        needle = pattern.lower()
        matches: list[str] = []
        for file in wd.files(path):
            try:
                lines = file.read_text(encoding="utf-8").splitlines()
            except (UnicodeDecodeError, OSError):
                continue  # binary or unreadable files hold no text to search
            name = wd.relative(file)
            matches += [
                f"{name}:{n}: {line.strip()}" for n, line in enumerate(lines, 1) if needle in line.lower()
            ]
            if len(matches) >= MAX_MATCHES:
                break
        return "\n".join(matches[:MAX_MATCHES]) if matches else f"no matches for {pattern!r}"

    def write_report(title: str, content: str) -> str:
        """Write a markdown report `reports/<title>.md` into the workdir; returns its path."""
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "report"
        text = f"# {title}\n\n{content.rstrip()}\n"
        reports = wd.resolve(REPORTS_DIR)
        reports.mkdir(exist_ok=True)
        for n in range(1, 1000):
            target = reports / (f"{slug}.md" if n == 1 else f"{slug}-{n}.md")
            # an identical report (e.g. written before a crash) is reused; others are never overwritten
            if not target.exists() or target.read_text(encoding="utf-8") == text:
                target.write_text(text, encoding="utf-8")
                return f"wrote {wd.relative(target)} ({len(text.encode())} bytes)"
        raise FileExistsError(f"too many reports named {slug!r}")

    tools = [StructuredTool.from_function(f) for f in (list_files, read_file, search_files)]
    return [*tools, requires_approval(StructuredTool.from_function(write_report))]


def demo_tools(workdir: str | Path) -> list[BaseTool]:
    """The bundled tools: ``calculator``, ``list_files``, ``read_file``, ``search_files`` and
    ``write_report`` (which requires approval), the file tools confined to ``workdir``."""
    return [calculator_tool(), *file_tools(workdir)]
