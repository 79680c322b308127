"""The CloudEvents 1.0 envelope, with the extension attributes Podium needs.

Extension names follow the CloudEvents naming rule (lower-case letters and
digits only): `workflowid`, `taskid`, `attempt`, `correlationid`,
`causationid`, `traceparent`. `subject` is the workflow id too, so generic
CloudEvents tools can group by it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializeAsAny

from podium.events.payloads import Payload

SPEC_VERSION = "1.0"
JSON = "application/json"


class CloudEvent(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    time: datetime
    subject: str
    datacontenttype: str = JSON
    data: SerializeAsAny[Payload]
    # Podium extensions
    workflowid: str
    taskid: str | None = None
    attempt: int | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None

    @property
    def key(self) -> bytes:
        """Kafka key: the workflow id, on every topic (one writer per workflow)."""
        return self.workflowid.encode()


def new_event(
    data: Payload,
    *,
    source: str,
    workflow_id: str,
    id: str | None = None,
    task_id: str | None = None,
    attempt: int | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Build an envelope around a payload without re-validating it (hot path)."""
    fields: dict[str, Any] = {
        "id": id or uuid.uuid4().hex,
        "source": source,
        "type": data.event_type,
        "specversion": SPEC_VERSION,
        "time": time or datetime.now(UTC),
        "subject": workflow_id,
        "datacontenttype": JSON,
        "data": data,
        "workflowid": workflow_id,
        "taskid": task_id,
        "attempt": attempt,
        "correlationid": correlation_id or workflow_id,
        "causationid": causation_id,
        "traceparent": traceparent,
    }
    return CloudEvent.model_construct(**fields)
