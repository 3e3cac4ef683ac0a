"""``open_checkpointer(url)``: a context manager, for ``with`` and ``async with`` alike."""

from __future__ import annotations

from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from durable_graph.encryption import Keys
from durable_graph.lifecycle import Opener
from durable_graph.urls import BackendURL, parse_url

FROM_ENV: Literal["env"] = "env"


def _build_saver(
    parsed: BackendURL, serde: SerializerProtocol | None, keys: Keys | None
) -> BaseCheckpointSaver:
    if parsed.kind in ("postgres", "embedded"):
        from durable_graph.checkpointers.postgres import PostgresCheckpointer

        return PostgresCheckpointer(parsed.postgres_conninfo(), serde=serde, keys=keys)
    if parsed.kind == "sqlite":
        from durable_graph.checkpointers.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(parsed.target, serde=serde, keys=keys)
    from durable_graph.checkpointers.memory import MemoryCheckpointer

    return MemoryCheckpointer(serde=serde)  # nothing at rest to encrypt


def _keys_from(keys: Keys | Literal["env"] | None) -> Keys | None:
    """``keys``, or those of the environment for ``"env"``."""
    if isinstance(keys, str):
        if keys != FROM_ENV:
            raise TypeError(f'keys must be a Keys, None or "env", not {keys!r}')
        return Keys.from_env()
    return keys


def open_checkpointer(
    url: str | None = None,
    *,
    serde: SerializerProtocol | None = None,
    keys: Keys | Literal["env"] | None = FROM_ENV,
) -> Opener:
    """Open the checkpointer behind ``url`` (default: ``$DURABLE_GRAPH_URL``, else ``embedded://``).

    ``with open_checkpointer(url) as saver`` and ``async with open_checkpointer(url) as saver`` both
    yield a saver that ``graph.invoke`` and ``graph.ainvoke`` can use. The schema is created or
    migrated on open. A bad URL raises ``InvalidURLError`` at once.

    ``serde`` replaces LangGraph's ``JsonPlusSerializer``. ``keys`` encrypts what is stored (see
    docs/security.md): by default the keys of ``$LANGGRAPH_AES_KEY`` (and
    ``$DURABLE_GRAPH_OLD_AES_KEYS``), nothing when it is unset; ``None`` turns encryption off.
    A malformed key raises ``EncryptionKeyError`` at once.
    """
    parsed = parse_url(url)
    resolved_keys = _keys_from(keys)
    return Opener(lambda: _build_saver(parsed, serde, resolved_keys))  # type: ignore[arg-type,return-value]
