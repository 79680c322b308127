"""The conductor's and the tracker's changelog value: one workflow's snapshot.

This module alone writes and reads it. A value is a JSON object, one of:

    {"mode": M, "state": S}                   a live workflow (S: its `WorkflowState`,
    {"mode": M, "state": S, "held": [O, ...]}   defaults left out), with the outcomes
                                                the tracker holds for it, if any
    {"held": [O, ...]}                        outcomes the tracker holds before it saw
                                                the workflow's trigger
    {"mode": M, "ended": R}                   an evicted workflow's result, kept to
                                                answer a repeated trigger with

M is a `Mode` ("orchestration" when missing), O an outcome and R a result, each
written with its event type: {"type": T, "data": payload}. A tombstone (no
value) forgets the workflow id. Restores read what a running deployment wrote,
so a change here must still decode every value written before it.

`encode` runs once per change of a workflow: one pydantic serialisation of the
state, concatenated with a few bytes, no intermediate dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from podium.events import (
    PAYLOADS,
    Mode,
    TaskFailed,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
)
from podium.events.payloads import Payload
from podium.workflow.state import WorkflowState

__all__ = ["Ended", "Outcome", "Snapshot", "decode", "encode"]

Outcome = TaskSucceeded | TaskFailed
Ended = WorkflowCompleted | WorkflowFailed


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One changelog value: a live state (with outcomes held for it), held outcomes only
    (the tracker saw them before the trigger), or an ended workflow's result."""

    mode: Mode = Mode.ORCHESTRATION
    state: WorkflowState | None = None
    held: tuple[Outcome, ...] = ()
    ended: Ended | None = None


def encode(snapshot: Snapshot) -> bytes:
    """The changelog value of `snapshot` (a state wins over a result, as restores read it)."""
    held = b""
    if snapshot.held:
        held = b',"held":[' + b",".join(_typed(o) for o in snapshot.held) + b"]"
    if snapshot.state is not None:
        return (
            b'{"mode":'
            + orjson.dumps(snapshot.mode)
            + b',"state":'
            + snapshot.state.model_dump_json(exclude_defaults=True).encode()
            + held
            + b"}"
        )
    if snapshot.ended is not None:
        return (
            b'{"mode":' + orjson.dumps(snapshot.mode) + b',"ended":' + _typed(snapshot.ended) + b"}"
        )
    return b"{" + held[1:] + b"}"


def decode(value: bytes) -> Snapshot:
    """A changelog value read back (`ValueError`, `KeyError` or `TypeError` if unreadable)."""
    data = orjson.loads(value)
    state = data.get("state")
    ended = data.get("ended")
    return Snapshot(
        mode=Mode(data.get("mode", Mode.ORCHESTRATION)),
        state=None if state is None else WorkflowState.model_validate(state),
        held=tuple(_payload(h, TaskSucceeded | TaskFailed) for h in data.get("held", ())),
        ended=None if ended is None else _payload(ended, WorkflowCompleted | WorkflowFailed),
    )


def _typed(payload: Payload) -> bytes:
    """A payload with its event type: {"type": T, "data": payload}."""
    return (
        b'{"type":'
        + orjson.dumps(payload.event_type)
        + b',"data":'
        + payload.model_dump_json().encode()
        + b"}"
    )


def _payload(typed: dict[str, Any], expected: Any) -> Any:
    payload = PAYLOADS[typed["type"]].model_validate(typed["data"])
    if not isinstance(payload, expected):
        raise ValueError(f"a {typed['type']} event where a snapshot holds {expected}")
    return payload
