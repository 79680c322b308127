"""The ways into and out of a workflow besides a manual start: the definition's
``triggers`` (schedules and event bindings), a task's ``wait_for`` and ``on_complete``.

The models validate what they hold when they are built — cron expressions
(croniter, five fields), IANA time zones (zoneinfo), every CEL expression
compiled with the variables its place provides — so ``podium validate`` reports
their problems with every other. The schedule arithmetic is here too, pure: the
gateway passes the time in.

What each expression sees:

- a binding's ``filter``, ``input`` and ``id``: ``event``, the consumed record
  (``data``, ``key``, ``headers``, ``topic``, ``partition``, ``offset``,
  ``timestamp`` and, for a CloudEvent, its attributes);
- a wait's ``match`` and ``output``: ``event`` and ``workflow`` (``input``, ``id``);
- ``on_complete``'s ``when`` and ``start.input``: ``workflow`` (``id``, ``name``,
  ``version``, ``input``, ``state``, ``output``, ``error``) and ``tasks.<id>``.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from podium.workflow.expressions import (
    KNOWN_VARIABLES,
    Expression,
    ExpressionError,
    Template,
    compile_expression,
    compile_template,
)

__all__ = [
    "END_VARIABLES",
    "EVENT_VARIABLES",
    "MISSED_GRACE_S",
    "WAIT_INPUT",
    "WAIT_TYPE",
    "WAIT_VARIABLES",
    "EventBinding",
    "OnComplete",
    "Publish",
    "Start",
    "Trigger",
    "WaitFor",
    "due_ticks",
    "next_ticks",
]

EVENT_VARIABLES = frozenset({"event"})
WAIT_VARIABLES = frozenset({"event", "workflow"})
END_VARIABLES = KNOWN_VARIABLES
#: the task type of a ``wait_for`` task: the trigger gateway completes it, no service
WAIT_TYPE = "podium.wait"
#: the input of a wait task's attempt (in both modes): the workflow's input, which its
#: ``match`` and ``output`` see as ``workflow.input``
WAIT_INPUT = "${ workflow.input }"
#: a tick at most this late is fired as usual (a restart, a slow poll); an older one
#: was missed during downtime and follows the schedule's ``missed`` policy
MISSED_GRACE_S = 60.0


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _strip(text: str) -> str:
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1].strip()
    return text


def _expression(variables: frozenset[str]) -> AfterValidator:
    def check(source: str) -> str:
        try:
            compile_expression(_strip(source), variables)
        except ExpressionError as error:
            raise ValueError(f"expression {error}") from None
        return source

    return AfterValidator(check)


def _template(variables: frozenset[str]) -> AfterValidator:
    def check(value: Any) -> Any:
        try:
            compile_template(value, variables)
        except ExpressionError as error:
            raise ValueError(str(error)) from None
        return value

    return AfterValidator(check)


def _check_topic(value: str) -> str:
    # Kafka's rule for topic names; Podium's own topics are not for the outside world
    if not value or len(value) > 249 or value in {".", ".."}:
        raise ValueError(f"invalid topic {value!r}: 1 to 249 characters")
    if not all(c.isascii() and (c.isalnum() or c in "._-") for c in value):
        raise ValueError(f"invalid topic {value!r}: use letters, digits, '.', '_' and '-'")
    if value.startswith("podium."):
        raise ValueError(f"topic {value!r} is one of Podium's own (podium.*)")
    return value


def _check_cron(value: str) -> str:
    if len(value.split()) != 5:
        raise ValueError(
            f"invalid cron {value!r}: use the standard five fields "
            "(minute hour day-of-month month day-of-week)"
        )
    if not croniter.is_valid(value):
        raise ValueError(f"invalid cron {value!r}")
    return value


def _check_timezone(value: str) -> str:
    try:
        zone(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin"
        ) from None
    return value


@functools.lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


Topic = Annotated[str, AfterValidator(_check_topic)]


class EventBinding(_Model):
    """Start the workflow for each record of ``topic`` that passes ``filter``."""

    topic: Topic
    filter: Annotated[str, _expression(EVENT_VARIABLES)] | None = None
    input: Annotated[dict[str, Any], _template(EVENT_VARIABLES)] = Field(default_factory=dict)
    #: the workflow id, from the record: the same record twice starts one workflow
    id: Annotated[str, _template(EVENT_VARIABLES)] | None = None

    def compiled(self) -> tuple[Expression | None, Template, Template | None]:
        """The filter, the input and the id, compiled (the sources' compilation is cached)."""
        return (
            compile_expression(_strip(self.filter), EVENT_VARIABLES) if self.filter else None,
            compile_template(self.input, EVENT_VARIABLES),
            compile_template(self.id, EVENT_VARIABLES) if self.id is not None else None,
        )


class Trigger(_Model):
    """One schedule (``cron``) or one event binding (``event``)."""

    cron: Annotated[str, AfterValidator(_check_cron)] | None = None
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    input: Annotated[dict[str, Any], _template(frozenset())] = Field(default_factory=dict)
    missed: Literal["skip", "run_once"] = "skip"
    event: EventBinding | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if (self.cron is None) == (self.event is None):
            raise ValueError("a trigger has either 'cron' or 'event'")
        if self.event is not None:
            extra = sorted({"timezone", "input", "missed"} & self.model_fields_set)
            if extra:
                raise ValueError(
                    f"{', '.join(extra)}: only for a 'cron' trigger (an event binding maps "
                    "its input in event.input)"
                )
        return self


class WaitFor(_Model):
    """A task the outside world completes: the first record of ``topic`` that ``match``es."""

    topic: Topic
    match: Annotated[str, _expression(WAIT_VARIABLES)]
    output: Annotated[Any, _template(WAIT_VARIABLES)] = None

    def compiled(self) -> tuple[Expression, Template]:
        """The match and the output, compiled (the sources' compilation is cached)."""
        return (
            compile_expression(_strip(self.match), WAIT_VARIABLES),
            compile_template(self.output, WAIT_VARIABLES),
        )


class Start(_Model):
    workflow: str
    version: int | None = Field(None, ge=1)
    input: Annotated[dict[str, Any], _template(END_VARIABLES)] = Field(default_factory=dict)


class Publish(_Model):
    topic: Topic


class OnComplete(_Model):
    """What happens once per workflow end: ``start`` another workflow or ``publish`` the result."""

    when: Annotated[str, _expression(END_VARIABLES)] | None = None
    start: Start | None = None
    publish: Publish | None = None

    @model_validator(mode="after")
    def _one_action(self) -> OnComplete:
        if (self.start is None) == (self.publish is None):
            raise ValueError("an on_complete entry has either 'start' or 'publish'")
        return self

    def refs(self) -> frozenset[str]:
        """The tasks its expressions name."""
        found: set[str] = set()
        if self.when is not None:
            found |= compile_expression(_strip(self.when)).tasks
        if self.start is not None:
            found |= compile_template(self.start.input).tasks
        return frozenset(found)


# -- schedules -----------------------------------------------------------------


def _ticks(cron: str, tz: str, after: float) -> croniter:
    start = datetime.fromtimestamp(after, UTC).astimezone(zone(tz))
    return croniter(cron, start)


def next_ticks(trigger: Trigger, after: float, count: int = 1) -> list[float]:
    """The next ``count`` fire times after ``after`` (epoch seconds), DST-correct in its zone."""
    assert trigger.cron is not None
    ticks = _ticks(trigger.cron, trigger.timezone, after)
    return [ticks.get_next(datetime).timestamp() for _ in range(count)]


def _last_tick(trigger: Trigger, at_or_before: float) -> float:
    assert trigger.cron is not None
    # croniter's get_prev from an exact tick skips it: start a microsecond later
    ticks = _ticks(trigger.cron, trigger.timezone, at_or_before + 1e-6)
    return float(ticks.get_prev(datetime).timestamp())


def due_ticks(
    trigger: Trigger, last: float, now: float, grace: float = MISSED_GRACE_S
) -> tuple[list[float], float]:
    """The ticks to fire at ``now`` after the last one handled (``last``), and the new ``last``.

    Ticks in ``(last, now]`` at most ``grace`` late fire; older ones were missed
    (downtime): ``skip`` drops them, ``run_once`` fires the latest of them once
    (when no tick is on time). Bounded: the ticks of a long downtime are not walked.
    """
    if now <= last:
        return [], last
    on_time: list[float] = []
    ticks = _ticks(trigger.cron or "", trigger.timezone, max(last, now - grace))
    while (tick := float(ticks.get_next(datetime).timestamp())) <= now:
        on_time.append(tick)
    due = list(on_time)
    latest_missed = _last_tick(trigger, now - grace)
    if latest_missed > last and not on_time and trigger.missed == "run_once":
        due = [latest_missed]
    handled = max([*due, latest_missed if latest_missed > last else last])
    return due, handled


def tick_label(tick: float) -> str:
    """A tick as it shows in a scheduled workflow's id: UTC, to the second."""
    return datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_id(name: str, index: int, tick: float) -> str:
    """The workflow id of one tick of one schedule: a second fire is a duplicate start."""
    return f"{name}:cron:{index}:{tick_label(tick)}"


def end_id(workflow_id: str, index: int) -> str:
    """The id of the workflow ``on_complete`` entry ``index`` starts: once per end."""
    return f"{workflow_id}:on_complete:{index}"
