"""Every id and salt derived from a workflow id, in one place, the same in both modes.

Pure: ids are deterministic so that a replayed or redelivered event gives the
same commands, and both modes back off with the same jitter for one workflow.
"""

from __future__ import annotations

import hashlib


def seed_of(workflow_id: str) -> int:
    """The workflow's seed for retry jitter (the conductor passes it in `Started`)."""
    return int.from_bytes(hashlib.blake2b(workflow_id.encode(), digest_size=8).digest(), "big")


def lane(task_id: str, compensation: bool) -> str:
    """A task, or its compensation: the key of its timers and its jitter."""
    return f"{task_id}:compensate" if compensation else task_id


def jitter_salt(seed: int, task_id: str, compensation: bool) -> str:
    """What the retry jitter of one task (or compensation) of a workflow is drawn from."""
    return f"{seed}:{lane(task_id, compensation)}"


def idempotency_key(workflow_id: str, task_id: str, compensation: bool) -> str:
    """Stable across the attempts of a task (or of its compensation): `wf:task`."""
    return f"{workflow_id}:{lane(task_id, compensation)}"


def command_id(workflow_id: str, task_id: str, attempt: int, compensation: bool) -> str:
    """One attempt: `wf:task:N` (`wf:task:compensate:N`)."""
    return f"{idempotency_key(workflow_id, task_id, compensation)}:{attempt}"


def attempt_timer(workflow_id: str, task_id: str, attempt: int, compensation: bool) -> str:
    """The timer that fails one attempt when it runs too long."""
    return f"{idempotency_key(workflow_id, task_id, compensation)}:timeout:{attempt}"


def retry_timer(workflow_id: str, task_id: str, attempt: int, compensation: bool) -> str:
    """The timer that starts attempt `attempt` after its backoff."""
    return f"{idempotency_key(workflow_id, task_id, compensation)}:retry:{attempt}"


def workflow_timer(workflow_id: str) -> str:
    """The timer that times the whole workflow out."""
    return f"{workflow_id}:timeout"
