"""What a service's own outcome partitions say about the attempts it ran.

A service is the single writer of its outcome partitions (an outcome goes to the
partition its command or join lives on). Before a handler runs, the service
writes a `podium.task.started` marker there and waits for the broker's ack;
after it, the outcome. So after a crash, the tail of those partitions tells,
per command id:

- finished: the outcome is there. A redelivered command is answered with it
  and its handler does not run again (only what was truly in flight re-runs);
- started N times since its task's last outcome: the task (any attempt: the
  retry of a deterministic crash crashes the same) was running when the
  service died, N times. Once it was in flight at a crash it runs alone, so a
  command that kills its process is told apart from the innocent ones that
  shared that crash; at `max_deliveries` it is given up on: a non-retryable
  `PoisonCommand` failure, and the partition moves on.

Pure: the shells feed it the decoded records they read on assignment, and what
they publish themselves while running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podium.events import TaskFailed, TaskStarted, TaskSucceeded
from podium.runtime.cache import BoundedCache

Outcome = TaskSucceeded | TaskFailed

#: how many records at the end of each outcome partition are read on assignment
WINDOW = 2_000
#: how many finished commands a service remembers (the redelivery window)
REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a command (or a restored attempt) about to run."""

    action: Literal["answer", "run", "run_alone", "give_up"]
    outcome: Outcome | None = None
    starts: int = 0


class Ledger:
    def __init__(self, max_deliveries: int) -> None:
        self.max_deliveries = max_deliveries
        self._finished: BoundedCache[str, Outcome] = BoundedCache(REMEMBERED)
        self._starts: BoundedCache[str, int] = BoundedCache(REMEMBERED)

    def observe(self, payload: object) -> None:
        """A record of an own outcome partition: a start marker or an outcome."""
        if isinstance(payload, TaskStarted):
            if self._finished.get(payload.command_id) is None:
                self.started(payload.command_id)
        elif isinstance(payload, TaskSucceeded | TaskFailed):
            self.finished(payload)

    def finished(self, outcome: Outcome) -> None:
        self._finished.put(outcome.command_id, outcome)
        self._starts.pop(_task_of(outcome.command_id))  # it ended: no crash to count

    def started(self, command_id: str) -> None:
        task = _task_of(command_id)
        self._starts.put(task, (self._starts.get(task) or 0) + 1)

    def verdict(self, command_id: str) -> Verdict:
        outcome = self._finished.get(command_id)
        if outcome is not None:
            return Verdict("answer", outcome)
        starts = self._starts.get(_task_of(command_id)) or 0
        if starts >= self.max_deliveries:
            return Verdict("give_up", starts=starts)
        if starts:
            return Verdict("run_alone", starts=starts)
        return Verdict("run", starts=starts)

    def poison_message(self, starts: int) -> str:
        return (
            f"the service died {starts} time(s) while running this command "
            f"(PODIUM_MAX_DELIVERIES={self.max_deliveries}): given up, not retried"
        )


def _task_of(command_id: str) -> str:
    """A command id without its attempt: `wf:task` (or `wf:task:compensate`)."""
    return command_id.rsplit(":", 1)[0]
