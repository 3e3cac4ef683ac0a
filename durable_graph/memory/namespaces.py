"""Namespaces: validation, and their text form in Postgres.

A namespace is a tuple of labels such as ``("users", "alice", "memories")``. Labels are non-empty
strings without ``"."`` (LangGraph's rule, and the separator of the stored text form
``"users.alice.memories"``) and without NUL bytes (Postgres text cannot hold them).
"""

from __future__ import annotations

from typing import Any

from langgraph.store.base import InvalidNamespaceError

SEPARATOR = "."


def validate_labels(namespace: Any, *, what: str = "namespace") -> tuple[str, ...]:
    """``namespace`` as a tuple of valid labels (it may be empty), or ``InvalidNamespaceError``."""
    if isinstance(namespace, str) or not isinstance(namespace, tuple | list):
        raise InvalidNamespaceError(
            f"{what} must be a tuple of strings such as ('users', 'alice'), got {namespace!r}"
        )
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(
                f"{what} {tuple(namespace)!r}: label {label!r} is a {type(label).__name__}, not a string"
            )
        if not label:
            raise InvalidNamespaceError(f"{what} {tuple(namespace)!r}: labels cannot be empty strings")
        if SEPARATOR in label:
            raise InvalidNamespaceError(
                f"{what} {tuple(namespace)!r}: label {label!r} contains a period ('.'), which is not allowed"
            )
        if "\x00" in label:
            raise InvalidNamespaceError(f"{what} {tuple(namespace)!r}: label {label!r} contains a NUL byte")
    return tuple(namespace)


def validate_item_namespace(namespace: Any) -> tuple[str, ...]:
    """The namespace of an item to write: valid labels, at least one, not rooted at "langgraph"."""
    labels = validate_labels(namespace)
    if not labels:
        raise InvalidNamespaceError("namespace cannot be empty: give at least one label, e.g. ('memories',)")
    if labels[0] == "langgraph":
        raise InvalidNamespaceError(f'namespace {labels!r}: the root label "langgraph" is reserved')
    return labels


def validate_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError(f"item key must be a string, got {type(key).__name__} {key!r}")
    if "\x00" in key:
        raise ValueError(f"item key {key!r} contains a NUL byte")
    return key


def to_text(namespace: tuple[str, ...]) -> str:
    return SEPARATOR.join(namespace)


def from_text(text: str) -> tuple[str, ...]:
    return tuple(text.split(SEPARATOR)) if text else ()


def prefix_condition(column: str, prefix: tuple[str, ...]) -> tuple[str, list[Any]]:
    """SQL matching the namespaces in ``column`` (``COLLATE "C"``) that start with ``prefix``.

    In byte order the namespaces below ``a.b`` all lie in ``["a.b", "a.b/")`` ("/" follows "."):
    one range, which the btree index serves even in a generic plan (parameter values unknown),
    and no LIKE escaping. The range also holds names such as ``a.b-c``; the second condition,
    ``a.b`` itself or past ``a.b.``, drops them.
    """
    if not prefix:
        return "TRUE", []
    text = to_text(prefix)
    return (
        f"({column} >= %s AND {column} < %s AND ({column} = %s OR {column} > %s))",
        [text, text + chr(ord(SEPARATOR) + 1), text, text + SEPARATOR],
    )
