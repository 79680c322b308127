"""The wire contract every participant shares: topics, CloudEvents, payloads, codec.

Conductor, task services, the tracker and any Kafka tool meet here and nowhere
else. Nothing in this package does I/O: it turns Kafka records into typed events
and back (CloudEvents 1.0, Kafka binary binding) and names every topic once.
"""

from podium.events import topics
from podium.events.codec import (
    DecodeError,
    KafkaRecord,
    RawRecord,
    dead_letter,
    decode,
    encode,
    event_type,
    salvage,
)
from podium.events.envelope import ONESHOT_SOURCE, CloudEvent, new_event
from podium.events.payloads import (
    PAYLOADS,
    ErrorInfo,
    Mode,
    TaskCommand,
    TaskFailed,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    TaskSummary,
    WorkflowCancelAccepted,
    WorkflowCancelRequested,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTriggered,
)

__all__ = [
    "ONESHOT_SOURCE",
    "PAYLOADS",
    "CloudEvent",
    "DecodeError",
    "ErrorInfo",
    "KafkaRecord",
    "Mode",
    "RawRecord",
    "TaskCommand",
    "TaskFailed",
    "TaskSkipped",
    "TaskStarted",
    "TaskSucceeded",
    "TaskSummary",
    "WorkflowCancelAccepted",
    "WorkflowCancelRequested",
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowStarted",
    "WorkflowTriggered",
    "dead_letter",
    "decode",
    "encode",
    "event_type",
    "new_event",
    "salvage",
    "topics",
]
