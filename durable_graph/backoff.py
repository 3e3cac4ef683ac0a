"""Retrying database calls while a server is briefly unreachable (a restart, a failover)."""

from __future__ import annotations

import time
from collections.abc import Iterator

FIRST_DELAY = 0.05
MAX_DELAY = 2.0


def backoff_delays(retry_for: float) -> Iterator[float]:
    """Seconds to sleep before each retry: doubling from 50 ms up to 2 s, for ``retry_for`` seconds.

    The iterator ends when the next sleep would pass the deadline; the caller then gives up.
    """
    deadline = time.monotonic() + retry_for
    delay = FIRST_DELAY
    while time.monotonic() + delay <= deadline:
        yield delay
        delay = min(delay * 2, MAX_DELAY)
