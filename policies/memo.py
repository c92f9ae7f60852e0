"""The core's memo caches, registered in one place so tests and benchmarks can start cold.

Each holds results of a pure function of its key (compiled policies by their JSON, probe sets by
config and rendering, Hubble record ends, DNS-pattern and HTTP-path expressions, Cilium's label
filter): emptying them changes no answer, only how long the next one takes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")
_ALL: list[Any] = []


class Memo(Generic[V]):
    """A bounded memo: at most ``limit`` entries, emptied whole when full (the keys repeat in bursts)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._store: dict[Hashable, V] = {}
        _ALL.append(self)

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        hit = self._store.get(key)
        if hit is None:
            if len(self._store) >= self.limit:
                self._store.clear()
            hit = self._store[key] = make()
        return hit

    def clear(self) -> None:
        self._store.clear()


def register(cached: Any) -> Any:
    """Register a ``functools.lru_cache``-wrapped function (returned unchanged, for use as a decorator)."""
    _ALL.append(cached)
    return cached


def clear() -> None:
    """Empty every memo cache of the core."""
    for cache in _ALL:
        getattr(cache, "cache_clear", getattr(cache, "clear", None))()
