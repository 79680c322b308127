"""A choreography participant's changelog value: one workflow's join, or its end.

This module alone writes and reads it. A value is a JSON object, one of:

    {"workflow_id": ..., "name": ..., ...}   the participant's `Join` of a workflow
                                             (defaults left out)
    {"ended": T}                             the join was settled and evicted at T
                                             (epoch seconds): the id never starts again

A tombstone (no value) forgets the workflow id. Restores read what a running
deployment wrote, so a change here must still decode every value written
before it. `encode` runs once per change of a join: one pydantic serialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from podium.workflow.join import Join

__all__ = ["Ended", "Snapshot", "decode", "encode"]


@dataclass(frozen=True, slots=True)
class Ended:
    """A settled join left memory at ``at`` (epoch seconds); its workflow id is remembered."""

    at: float


Snapshot = Join | Ended


def encode(snapshot: Snapshot) -> bytes:
    if isinstance(snapshot, Ended):
        return orjson.dumps({"ended": snapshot.at})
    return snapshot.model_dump_json(exclude_defaults=True).encode()


def decode(value: bytes) -> Snapshot:
    """A changelog value read back (`ValueError`, `KeyError` or `TypeError` if unreadable)."""
    data = orjson.loads(value)
    if "ended" in data:
        return Ended(float(data["ended"]))
    return Join.model_validate(data)
