"""In-process checkpointer for tests and notebooks: LangGraph's ``InMemorySaver`` plus the
operations it lacks (``delete_for_runs``, ``copy_thread``, ``prune``, ``prune_keep``) and the
open/close methods ``open_checkpointer`` calls. Nothing survives the process."""

from __future__ import annotations

from collections.abc import Sequence

from langgraph.checkpoint.memory import InMemorySaver

from durable_graph.checkpointers.common import (
    DELTA_METADATA_KEY,
    check_prune_args,
    check_prune_keep_args,
    check_run_ids,
    delta_refusal,
)
from durable_graph.errors import ThreadNotFoundError


class MemoryCheckpointer(InMemorySaver):
    """A checkpointer in process memory with all eight conformance capabilities."""

    def open(self) -> None:
        """Nothing to open: the storage is a dict."""

    def close(self) -> None:
        """Nothing to close; the checkpoints stay readable until the object is dropped."""

    async def aopen(self) -> None:
        self.open()

    async def aclose(self) -> None:
        self.close()

    # -- the extra operations (the async forms call the same sync core, like InMemorySaver) -----

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = set(check_run_ids(run_ids))
        if not runs:
            return
        for thread_id in list(self.storage):
            namespaces = self.storage[thread_id]
            doomed = [
                (ns, checkpoint_id)
                for ns, checkpoints in namespaces.items()
                for checkpoint_id, (_, metadata, _) in checkpoints.items()
                if self.serde.loads_typed(metadata).get("run_id") in runs
            ]
            if doomed:
                self._drop_checkpoints(thread_id, doomed)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source, target = str(source_thread_id), str(target_thread_id)
        if not any(self.storage.get(source, {}).values()):
            raise ThreadNotFoundError(source)
        if any(self.storage.get(target, {}).values()):
            raise ValueError(
                f"cannot copy thread {source!r} to {target!r}: the target thread already has "
                "checkpoints (delete it first)"
            )
        # The target has no checkpoints: writes under its id were saved by a task after its thread
        # was deleted, and a copied checkpoint would take them for its own.
        for key in [key for key in self.writes if key[0] == target]:
            del self.writes[key]
        # Stored entries are tuples of serialized bytes, so sharing them is safe.
        for ns, checkpoints in self.storage[source].items():
            self.storage[target][ns] = dict(checkpoints)
        for (thread_id, ns, checkpoint_id), writes in list(self.writes.items()):
            if thread_id == source:
                self.writes[(target, ns, checkpoint_id)] = dict(writes)
        for (thread_id, ns, channel, version), blob in list(self.blobs.items()):
            if thread_id == source:
                self.blobs[(target, ns, channel, version)] = blob

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the latest checkpoint of each namespace (``"keep_latest"``, which is
        ``prune_keep(thread_ids, 1)``) or delete the threads (``"delete"``)."""
        ids = check_prune_args(thread_ids, strategy)
        if strategy == "delete":
            for thread_id in ids:
                self.delete_thread(thread_id)
            return
        self.prune_keep(ids, 1)

    def prune_keep(self, thread_ids: Sequence[str], keep: int) -> None:
        """Keep the ``keep`` newest checkpoints of each namespace and delete the older ones with their
        writes and the values nothing uses any more. Refuses threads that use a ``DeltaChannel``."""
        ids = check_prune_keep_args(thread_ids, keep)
        delta = [
            thread_id
            for thread_id in ids
            for checkpoints in self.storage.get(thread_id, {}).values()
            for _, metadata, _ in checkpoints.values()
            if DELTA_METADATA_KEY in self.serde.loads_typed(metadata)
        ]
        if delta:
            raise delta_refusal(delta, keep)
        for thread_id in ids:
            doomed = [
                (ns, checkpoint_id)
                for ns, checkpoints in self.storage.get(thread_id, {}).items()
                for checkpoint_id in sorted(checkpoints)[:-keep]
            ]
            if doomed:
                self._drop_checkpoints(thread_id, doomed)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)

    async def aprune_keep(self, thread_ids: Sequence[str], keep: int) -> None:
        self.prune_keep(thread_ids, keep)

    def _drop_checkpoints(self, thread_id: str, doomed: list[tuple[str, str]]) -> None:
        """Delete checkpoints with their writes, unlink their children, and drop unused values."""
        namespaces = self.storage[thread_id]
        for ns, checkpoint_id in doomed:
            del namespaces[ns][checkpoint_id]
            self.writes.pop((thread_id, ns, checkpoint_id), None)
        for checkpoints in namespaces.values():
            for checkpoint_id, (checkpoint, metadata, parent) in list(checkpoints.items()):
                if parent is not None and parent not in checkpoints:
                    checkpoints[checkpoint_id] = (checkpoint, metadata, None)
        used = {
            (ns, channel, version)
            for ns, checkpoints in namespaces.items()
            for checkpoint, _, _ in checkpoints.values()
            for channel, version in self.serde.loads_typed(checkpoint)["channel_versions"].items()
        }
        for key in [k for k in self.blobs if k[0] == thread_id and k[1:] not in used]:
            del self.blobs[key]
