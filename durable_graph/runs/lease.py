"""Holding a thread while running it, and asking whether anyone does: one runner per thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from durable_graph.errors import ThreadBusyError
from durable_graph.leases import thread_lease

LEASE_WAIT = 3.0
"""Seconds to wait for another runner to let go of a thread before giving up with ``ThreadBusyError``."""


@contextmanager
def lease(url: str, thread_id: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the thread's lease while running it, so two processes never run one thread at once.

    Without ``wait`` a busy thread is given up after a short wait (which lets a listing that is
    probing the lease finish first); with it, this waits as long as it takes."""
    with thread_lease(url, thread_id, wait=True, timeout=None if wait else LEASE_WAIT):
        yield


def is_active(url: str, thread_id: str) -> bool:
    """Whether a runner is running the thread right now (it holds the thread's lease)."""
    try:
        with thread_lease(url, thread_id):
            return False
    except ThreadBusyError:
        return True
