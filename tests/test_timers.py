"""The processors' timer heap: due order, timers added while firing, pruning of ids gone."""

from __future__ import annotations

from podium.runtime.timers import SLACK, Timers


def test_timers_fire_in_due_order_and_one_added_while_firing_fires_if_due() -> None:
    timers: Timers[str] = Timers()
    timers.add(3.0, "w1", "c")
    timers.add(1.0, "w2", "a")
    timers.add(9.0, "w3", "late")
    fired = []
    for workflow_id, what in timers.due(5.0):
        fired.append((workflow_id, what))
        if what == "a":
            timers.add(2.0, "w2", "retry")  # a decision scheduling one already due
    assert fired == [("w2", "a"), ("w2", "retry"), ("w1", "c")]
    assert timers.next_due() == 9.0 and len(timers) == 1


def test_the_timers_of_ids_gone_are_dropped_once_they_outgrow_the_known_ones() -> None:
    timers: Timers[str] = Timers()
    known = {"kept"}
    timers.add(1.0, "kept", "x")
    for n in range(SLACK + 2):
        timers.add(100.0 + n, f"gone-{n}", "forget")
        timers.prune(known.__contains__, len(known))
    assert len(timers) <= 2 * len(known) + SLACK + 1  # swept when it grew past that
    timers.keep(known.__contains__)
    assert [w for w, _ in timers.due(1e9)] == ["kept"]
