"""One runner per thread, fenced: ``thread_lease(url_or_saver, thread_id)``.

- ``lease``: ``thread_lease`` and ``ThreadLease``, waiting for a busy thread, for every backend;
- ``postgres``: the Postgres lease (an advisory lock plus an epoch) and its keeper;
- ``fences``: the epoch every write of a leased run checks, found by database and thread id;
- ``local``: the file lock of a SQLite file and the in-process lock of memory backends;
- ``keys``: the lock key of a thread.
"""

from durable_graph.leases.keys import advisory_key
from durable_graph.leases.lease import ThreadLease, backend_of, thread_lease

__all__ = ["ThreadLease", "advisory_key", "backend_of", "thread_lease"]
