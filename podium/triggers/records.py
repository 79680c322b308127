"""A consumed record as the ``event`` a binding's expressions see.

``data`` is the value parsed as JSON, or the raw text when it is not JSON (or
None for a record without one); ``key`` the key as text; ``headers`` a map of
header names to text; ``topic``, ``partition``, ``offset`` and ``timestamp``
(epoch milliseconds); a CloudEvent in binary mode also brings its attributes
(``type``, ``source``, ``id``, ``subject``, ``time``, ...) from its ``ce_*``
headers, and one in structured mode (``application/cloudevents+json``) from its
body, whose ``data`` is then the event's data. Records that are neither still
match on what they have.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord

#: attributes a binding cannot take from a CloudEvent: they name the record itself
_RECORD_FIELDS = frozenset({"data", "key", "headers", "topic", "partition", "offset", "timestamp"})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def event_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """The ``event`` variable for one record."""
    headers = {name: _text(value) or "" for name, value in record.headers or ()}
    data: Any = None
    if record.value is not None:
        try:
            data = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            data = _text(record.value)
    event: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce_") and name[3:] not in _RECORD_FIELDS:
            event[name[3:]] = value
    content_type = headers.get("content-type", "")
    if content_type.startswith("application/cloudevents+json") and isinstance(data, dict):
        event.update({k: v for k, v in data.items() if k not in _RECORD_FIELDS})
        data = data.get("data")
    event.update(
        data=data,
        key=_text(record.key),
        headers=headers,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
    )
    return event
