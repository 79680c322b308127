"""Prometheus metrics, defined once here; every long-running role serves them.

`podium conductor|tracker|service|history-store --metrics-port N` (or
`PODIUM_METRICS_PORT`; a choreography participant is `podium service --mode
choreography`) serves `/metrics` from the default registry, the one the HTTP API
serves too. Nothing runs for them beyond counter increments until
`serve` is called: consumer lag is sampled (once a second, from what the
consumer already knows) only while an endpoint is up.

| metric | labels | what |
|---|---|---|
| `podium_workflows_started_total` | workflow, mode | workflows started, counted where they are announced (the conductor, the tracker for choreography) |
| `podium_workflows_ended_total` | workflow, mode, state | workflows ended, by final state |
| `podium_task_attempts_total` | task_type, mode, outcome | attempts this process ran, `succeeded` or `failed` |
| `podium_task_duration_seconds` | task_type, mode | handler time of one attempt (histogram) |
| `podium_task_queued_seconds` | task_type, mode | from the command (orchestration) or the decision to run (choreography) to the handler's start (histogram) |
| `podium_consumer_lag` | group, topic | records not yet fetched, over the partitions this process is assigned |
| `podium_dead_letters_total` | topic | records sent to `podium.dlq`, by the topic they came from |
| `podium_binding_records_total` | binding, outcome | records of a bound topic by event binding (`<workflow>#<index>`): `matched`, `filtered` or `dead_lettered` (the trigger gateway; `podium triggers list --metrics-url` shows them) |
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("podium.metrics")

#: seconds, from a quick in-memory handler to a long one
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: how often consumer lag is read while an endpoint is up
LAG_INTERVAL_S = 1.0

WORKFLOWS_STARTED = Counter("podium_workflows_started", "Workflows started.", ["workflow", "mode"])
WORKFLOWS_ENDED = Counter(
    "podium_workflows_ended", "Workflows ended, by final state.", ["workflow", "mode", "state"]
)
TASK_ATTEMPTS = Counter(
    "podium_task_attempts",
    "Task attempts run by this process, by outcome (succeeded, failed).",
    ["task_type", "mode", "outcome"],
)
TASK_DURATION = Histogram(
    "podium_task_duration_seconds",
    "Handler time of one task attempt.",
    ["task_type", "mode"],
    buckets=BUCKETS,
)
TASK_QUEUED = Histogram(
    "podium_task_queued_seconds",
    "From the command (or, in choreography, the decision to run) to the handler's start.",
    ["task_type", "mode"],
    buckets=BUCKETS,
)
CONSUMER_LAG = Gauge(
    "podium_consumer_lag",
    "Records not yet fetched, over the partitions of the topic this process is assigned.",
    ["group", "topic"],
)
DEAD_LETTERS = Counter(
    "podium_dead_letters", "Records sent to the dead-letter topic, by origin topic.", ["topic"]
)

BINDING_RECORDS = Counter(
    "podium_binding_records",
    "Records of a bound topic, by event binding and what became of them.",
    ["binding", "outcome"],
)
#: the outcomes of a record at an event binding
BINDING_OUTCOMES = ("matched", "filtered", "dead_lettered")

_serving = False


def serve(port: int, host: str = "127.0.0.1") -> int:
    """Serve `/metrics` on a background thread; returns the port (0: a free one)."""
    global _serving
    server, _ = start_http_server(port, addr=host)
    _serving = True
    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound


def serving() -> bool:
    return _serving


def workflow_started(workflow: str, mode: str) -> None:
    WORKFLOWS_STARTED.labels(workflow, mode).inc()


def workflow_ended(workflow: str, mode: str, state: str) -> None:
    WORKFLOWS_ENDED.labels(workflow, mode, state).inc()


#: (task type, mode) -> its labelled series, looked up once (every attempt reports)
_attempt_series: dict[tuple[str, str], tuple[Counter, Counter, Histogram, Histogram]] = {}


def attempt(
    task_type: str, mode: str, succeeded: bool, duration: float, queued: float | None
) -> None:
    series = _attempt_series.get((task_type, mode))
    if series is None:
        series = _attempt_series[(task_type, mode)] = (
            TASK_ATTEMPTS.labels(task_type, mode, "succeeded"),
            TASK_ATTEMPTS.labels(task_type, mode, "failed"),
            TASK_DURATION.labels(task_type, mode),
            TASK_QUEUED.labels(task_type, mode),
        )
    ok, failed, handler_time, queueing_time = series
    (ok if succeeded else failed).inc()
    handler_time.observe(duration)
    if queued is not None:
        queueing_time.observe(max(0.0, queued))


def dead_lettered(topic: str) -> None:
    DEAD_LETTERS.labels(topic).inc()


def binding_record(binding: str, outcome: str) -> None:
    BINDING_RECORDS.labels(binding, outcome).inc()


class Lag:
    """Consumer lag of one group, read at most once a second, only while metrics are served.

    `read` returns records behind the high watermark per topic (the consumer's own
    figures: no broker round trip).
    """

    def __init__(self, group: str, read: Callable[[], dict[str, int]]) -> None:
        self.group = group
        self.read = read
        self._next = 0.0
        self._topics: set[str] = set()

    def tick(self) -> None:
        if not _serving:
            return
        now = time.monotonic()
        if now < self._next:
            return
        behind = self.read()
        if not behind and not self._topics:
            return  # nothing assigned and fetched yet: ask again on the next tick
        self._next = now + LAG_INTERVAL_S
        for topic in self._topics - behind.keys():  # no longer assigned here
            CONSUMER_LAG.labels(self.group, topic).set(0)
        for topic, records in behind.items():
            CONSUMER_LAG.labels(self.group, topic).set(records)
        self._topics = set(behind)
