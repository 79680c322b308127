"""A processor's timers: a heap of (due, workflow id, what), with the known ids kept.

The conductor, the tracker and the choreography participants time retries, attempt
timeouts, evictions and forgetting by workflow id. An id can leave before its timers
are due (its partition revoked, or forgotten by count, days before its FORGET timer);
`prune` then drops the timers of ids no longer known, so the heap stays about as
large as what it times.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: timers beyond twice the known ids (plus this) are pruned of unknown ids
SLACK = 1_024


class Timers(Generic[T]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, str, T]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, due: float, workflow_id: str, what: T) -> None:
        heapq.heappush(self._heap, (due, workflow_id, what))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> Iterator[tuple[str, T]]:
        """Pop the timers due by `now`, earliest first (the caller may add more meanwhile)."""
        while self._heap and self._heap[0][0] <= now:
            _, workflow_id, what = heapq.heappop(self._heap)
            yield workflow_id, what

    def prune(self, known: Callable[[str], bool], count: int) -> None:
        """Drop the timers of ids that are not `known`, once the heap has grown past twice
        the `count` of known ids: an amortised sweep, not one per removal."""
        if len(self._heap) > 2 * count + SLACK:
            self.keep(known)

    def keep(self, known: Callable[[str], bool]) -> None:
        """Drop the timers of ids that are not `known`, now."""
        self._heap = [t for t in self._heap if known(t[1])]
        heapq.heapify(self._heap)
