"""Pure bookkeeping for a consumer that finishes records out of order.

Handlers run concurrently, so record 7 may finish before record 5. An offset
may be committed only when every record before it is finished too: the commit
point of a partition is the end of its contiguous finished prefix.
"""

from __future__ import annotations

from aiokafka import TopicPartition


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[TopicPartition, dict[int, bool]] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._pending.setdefault(tp, {})[offset] = False

    def finished(self, tp: TopicPartition, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None and offset in pending:
            pending[offset] = True

    def committable(self) -> dict[TopicPartition, int]:
        """Advance the commit points; return the partitions whose point moved."""
        moved: dict[TopicPartition, int] = {}
        for tp, pending in self._pending.items():
            point = None
            for offset in sorted(pending):  # insertion is mostly in order: cheap
                if not pending[offset]:
                    break
                point = offset + 1
                del pending[offset]
            if point is not None:
                moved[tp] = point
        return moved

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop revoked partitions: their unfinished records will be redelivered elsewhere."""
        for tp in partitions:
            self._pending.pop(tp, None)
