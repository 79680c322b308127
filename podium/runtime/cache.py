"""A bounded LRU map: the memory of long-running consumers stays flat."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """An LRU map of at most `size` entries: the redelivery window.

    `on_evict` is told of each entry pushed out by the size bound (not of `pop`), so that
    what was written elsewhere for it (a changelog key) can be dropped too.
    """

    def __init__(self, size: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        self.size = size
        self.on_evict = on_evict
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            evicted = self._items.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(*evicted)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def items(self) -> list[tuple[K, V]]:
        return list(self._items.items())

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)
