"""What names a thread's lock: a digest of its id (a file name, a Postgres advisory lock key)."""

from __future__ import annotations

import hashlib


def digest(thread_id: str, size: int) -> bytes:
    return hashlib.blake2b(f"durable_graph:thread:{thread_id}".encode(), digest_size=size).digest()


def advisory_key(thread_id: str) -> int:
    """The Postgres advisory lock key (a signed 64-bit integer) of a thread."""
    return int.from_bytes(digest(thread_id, 8), "big", signed=True)
