"""Every Kafka topic Podium uses, declared once.

All topics of one deployment have the same partition count and every record is
keyed by workflow id, so all events of one workflow share a partition number:
one conductor (or one choreography participant) owns each workflow.

- `podium.triggers`: workflow.triggered (written by `podium trigger`), workflow.cancel_requested
  (`podium cancel`, the API) and workflow.cancel_accepted (the conductor or tracker that
  took the cancel, for the participants and the tracker to follow)
- `podium.tasks.<type>.commands`: task.command for one task type (conductor)
- `podium.tasks.<type>.outcomes`: task.succeeded / failed / skipped of that type, written
  by the service that ran it, on the partition its command (or join) lives on: one
  writer per partition; a choreography service subscribes to the types it waits for
- `podium.workflows`: workflow.started / completed / failed (conductor, tracker)
- `podium.conductor.changelog`: workflow state snapshots, compacted (conductor)
- `podium.tracker.changelog`: the tracker's workflow state snapshots, compacted
- `podium.choreo.<service>.changelog`: join state of one service, compacted
- `podium.compare.<scope>.<role>.changelog`: a conductor's or tracker's that `podium compare` runs
- `podium.dlq`: records that could not be decoded, reason in headers (any consumer)
- `podium.schedules`: nothing is written to it; its partitions share the schedules out
  among trigger gateways (the owner of a definition's partition fires its schedules)
- `podium.gateway.changelog`: the last tick each schedule handled, compacted (gateway)
- `podium.gateway.waits.changelog`: the wait tasks' attempts waiting for a record in
  orchestration, compacted (gateway; in choreography the gateway's participant keeps
  them in `podium.choreo.podium.gateway.changelog`)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TRIGGERS = "podium.triggers"
WORKFLOWS = "podium.workflows"
CONDUCTOR_CHANGELOG = "podium.conductor.changelog"
TRACKER_CHANGELOG = "podium.tracker.changelog"
DEAD_LETTER = "podium.dlq"
SCHEDULES = "podium.schedules"
GATEWAY_CHANGELOG = "podium.gateway.changelog"
WAITS_CHANGELOG = "podium.gateway.waits.changelog"

#: the one pattern for what names a topic: task types and service names. Kafka allows
#: letters, digits, '.', '_' and '-' in 249 characters; the longest topic built from a
#: name, `podium.tasks.<type>.outcomes`, leaves 200 for it
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def name_problem(value: str, what: str) -> str | None:
    """Why `value` cannot be a task type or service name (it names topics), or None."""
    if NAME.fullmatch(value):
        return None
    return (
        f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-', starting with a "
        "letter or digit, at most 200 characters (it names Kafka topics)"
    )


def _checked(value: str, what: str) -> str:
    problem = name_problem(value, what)
    if problem is not None:
        raise ValueError(problem)
    return value


def commands(task_type: str) -> str:
    """The command topic of one task type: services subscribe per type."""
    return f"podium.tasks.{_checked(task_type, 'task type')}.commands"


def outcomes(task_type: str) -> str:
    """The outcome topic of one task type (a compensation's outcomes: its own type's)."""
    return commands(task_type).removesuffix(".commands") + ".outcomes"


def task_topics(task_types: Iterable[str]) -> list[str]:
    """The command and outcome topics of these task types."""
    return [name for t in sorted(task_types) for name in (commands(t), outcomes(t))]


def choreography_changelog(service: str) -> str:
    """The join-state changelog of one choreography service."""
    return f"podium.choreo.{_checked(service, 'service name')}.changelog"


def compare_changelog(scope: str, role: str) -> str:
    """The state changelog of a conductor or tracker that `podium compare` runs in `scope`,
    apart from any deployment on the same broker."""
    return f"podium.compare.{_checked(scope, 'scope')}.{_checked(role, 'role')}.changelog"


def of_stateful_consumer(changelog: str, task_types: Iterable[str]) -> list[str]:
    """Every topic a conductor, tracker or choreography service reads or writes."""
    return [TRIGGERS, WORKFLOWS, changelog, DEAD_LETTER, *task_topics(task_types)]


def is_changelog(topic: str) -> bool:
    """A state changelog: compacted, read in full on restore."""
    return topic.startswith("podium.") and topic.endswith(".changelog")


def is_command_topic(topic: str) -> bool:
    return topic.startswith("podium.tasks.") and topic.endswith(".commands")
