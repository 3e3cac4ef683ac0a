"""Leases of backends that live on one machine: a file lock next to a SQLite file, or a lock in
this process (memory). Neither can be lost while its holder lives, so neither needs a fence."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from durable_graph.leases.fences import Fence
from durable_graph.leases.keys import digest


class FileHolder:
    """An exclusive ``flock`` on ``<database>.leases/<hash of thread id>.lock``."""

    fence: Fence | None = None  # cannot be lost while its process lives: nothing to fence

    def __init__(self, database: Path, thread_id: str) -> None:
        self._dir = database.parent / (database.name + ".leases")
        self._path = self._dir / (digest(thread_id, 16).hex() + ".lock")
        self._thread_id = thread_id
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self._dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # A releasing holder unlinks the file before unlocking it; if we locked such an
            # orphaned file, the lock means nothing: try again with the file now at the path.
            try:
                current = os.stat(self._path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {self._thread_id}\n".encode())
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            os.close(fd)  # closing the last descriptor drops the flock

    async def atry_acquire(self) -> bool:
        return self.try_acquire()  # never blocks: LOCK_NB

    async def arelease(self) -> None:
        self.release()


_local_lock = threading.Lock()
_local_busy: set[str] = set()


class LocalHolder:
    """A lock in this process, for backends that live in this process only."""

    fence: Fence | None = None  # cannot be lost while its process lives: nothing to fence

    def __init__(self, scope: str, thread_id: str) -> None:
        self._key = f"{scope}\0{thread_id}"
        self._held = False

    def try_acquire(self) -> bool:
        with _local_lock:
            if self._key in _local_busy:
                return False
            _local_busy.add(self._key)
        self._held = True
        return True

    def release(self) -> None:
        if self._held:
            with _local_lock:
                _local_busy.discard(self._key)
            self._held = False

    async def atry_acquire(self) -> bool:
        return self.try_acquire()

    async def arelease(self) -> None:
        self.release()
