"""``langgraph dev`` as a subprocess for the tests: on a free local port, in a directory of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

from durable_graph.temporal.devserver import free_port

LANGGRAPH = str(Path(sys.executable).parent / "langgraph")
# Nothing leaves the machine: no usage analytics from the CLI, no version check, no tracing.
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
}
_API_URL = re.compile(rb"API: \S*?(http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 90.0
JOBS = 4


class AgentServer:
    """``langgraph dev --no-browser`` run from ``workdir`` (where its ``langgraph.json`` is and where
    the in-memory runtime keeps its own records, in ``.langgraph_api/``)."""

    def __init__(self, workdir: Path, env: dict[str, str], *, reload: bool = False) -> None:
        self.workdir = workdir
        self.env = {**os.environ, **OFFLINE_ENV, **env}
        self.reload = reload
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    @property
    def log_file(self) -> Path:
        return self.workdir / f"server-{self.starts}.log"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def start(self) -> str:
        """Start the server and wait until it answers; returns its URL."""
        self.starts += 1
        command = [LANGGRAPH, "dev", "--no-browser", "--host", "127.0.0.1", "--port", str(free_port())]
        # It runs one run at a time unless told otherwise; the tests hold some runs in the middle.
        command += ["--n-jobs-per-worker", str(JOBS)]
        if not self.reload:
            command.append("--no-reload")
        with self.log_file.open("wb") as log:
            # A session of its own, so that a kill reaches the reloader's worker process too.
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            # It moves to another port when the one asked for was taken meanwhile: read the one it uses.
            found = _API_URL.search(self.log_file.read_bytes())
            if found and _answers(found.group(1).decode()):
                self.url = found.group(1).decode()
                return self.url
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"langgraph dev did not answer within {START_TIMEOUT}s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """Crash it: SIGKILL to its whole process group (the reloader's worker too)."""
        assert self.proc is not None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        """Stop it as a service manager would: SIGTERM to its main process, which tells the rest."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
