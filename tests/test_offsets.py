"""The commit point of out-of-order work is the end of its finished prefix."""

from __future__ import annotations

from aiokafka import TopicPartition

from podium.runtime.offsets import OffsetTracker

TP = TopicPartition("t", 0)


def test_commit_point_waits_for_the_oldest_unfinished_record() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.started(TP, offset)
    tracker.finished(TP, 7)
    assert tracker.committable() == {}  # 5 and 6 still run
    tracker.finished(TP, 5)
    assert tracker.committable() == {TP: 6}
    tracker.finished(TP, 6)
    assert tracker.committable() == {TP: 8}
    assert tracker.committable() == {}  # nothing new


def test_forgotten_partitions_are_not_committed() -> None:
    tracker = OffsetTracker()
    tracker.started(TP, 1)
    tracker.forget({TP})
    tracker.finished(TP, 1)
    assert tracker.committable() == {}
