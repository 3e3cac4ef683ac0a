"""A store handle confined to a namespace prefix.

``store.scoped(("users", "alice"))`` reads, lists and writes only below ``("users", "alice")``.
Callers use namespaces relative to the scope (``("memories",)`` means
``("users", "alice", "memories")``) and get relative namespaces back. Every namespace is validated
before the scope is prepended, so no input can name anything outside it.
"""

from __future__ import annotations

from collections.abc import Iterable

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from durable_graph.memory import namespaces as ns


class ScopedStore(BaseStore):
    """A view of ``store`` limited to the namespaces that start with ``prefix``."""

    def __init__(self, store: BaseStore, prefix: tuple[str, ...]) -> None:
        self.store = store
        self.prefix = ns.validate_item_namespace(prefix)
        self.supports_ttl = store.supports_ttl
        self.ttl_config = store.ttl_config

    def scoped(self, prefix: tuple[str, ...]) -> ScopedStore:
        return ScopedStore(self.store, self.prefix + ns.validate_labels(prefix))

    def _inner(self, op: Op) -> Op:
        if isinstance(op, GetOp):
            return op._replace(namespace=self.prefix + ns.validate_labels(op.namespace))
        if isinstance(op, PutOp):
            return op._replace(namespace=self.prefix + ns.validate_labels(op.namespace))
        if isinstance(op, SearchOp):
            prefix = ns.validate_labels(op.namespace_prefix, what="namespace prefix")
            return op._replace(namespace_prefix=self.prefix + prefix)
        if isinstance(op, ListNamespacesOp):
            return self._inner_list(op)
        raise ValueError(f"unknown store operation {type(op).__name__}")

    def _inner_list(self, op: ListNamespacesOp) -> ListNamespacesOp:
        conditions = []
        # The relative part must be non-empty and at least as long as any suffix, so a suffix can
        # never match labels of the scope itself.
        needed = 1
        for condition in op.match_conditions or ():
            if not isinstance(condition, MatchCondition):
                raise ValueError(f"match condition must be a MatchCondition, got {condition!r}")
            path = ns.validate_labels(condition.path, what="path")
            if condition.match_type == "prefix":
                conditions.append(MatchCondition("prefix", self.prefix + path))
            elif condition.match_type == "suffix":
                conditions.append(MatchCondition("suffix", path))
            else:
                raise ValueError(f"match type must be 'prefix' or 'suffix', got {condition.match_type!r}")
            needed = max(needed, len(path))
        conditions.append(MatchCondition("prefix", self.prefix + ("*",) * needed))
        if op.max_depth is not None and (isinstance(op.max_depth, bool) or not isinstance(op.max_depth, int)):
            raise ValueError(f"max_depth must be an integer >= 1, got {op.max_depth!r}")
        max_depth = None if op.max_depth is None else len(self.prefix) + op.max_depth
        return op._replace(match_conditions=tuple(conditions), max_depth=max_depth)

    def _relative(self, namespace: tuple[str, ...]) -> tuple[str, ...]:
        if namespace[: len(self.prefix)] != self.prefix:
            raise RuntimeError(f"store returned namespace {namespace!r} outside the scope {self.prefix!r}")
        return namespace[len(self.prefix) :]

    def _outer(self, result: Result) -> Result:
        if isinstance(result, SearchItem):
            return SearchItem(
                namespace=self._relative(result.namespace),
                key=result.key,
                value=result.value,
                created_at=result.created_at,
                updated_at=result.updated_at,
                score=result.score,
            )
        if isinstance(result, Item):
            return Item(
                namespace=self._relative(result.namespace),
                key=result.key,
                value=result.value,
                created_at=result.created_at,
                updated_at=result.updated_at,
            )
        if isinstance(result, list):
            return [self._relative(r) if isinstance(r, tuple) else self._outer(r) for r in result]  # type: ignore[return-value,misc]
        return result

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        inner = [self._inner(op) for op in ops]
        return [self._outer(r) for r in self.store.batch(inner)]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        inner = [self._inner(op) for op in ops]
        return [self._outer(r) for r in await self.store.abatch(inner)]

    def __repr__(self) -> str:
        return f"ScopedStore({self.store!r}, prefix={self.prefix!r})"
