"""Every id and salt derived from a workflow id, in one place, the same in both modes.

Pure: ids are deterministic so that a replayed or redelivered event gives the
same commands, and both modes back off with the same jitter for one workflow.
"""

from __future__ import annotations

import hashlib

from podium.workflow.messages import Step


def seed_of(workflow_id: str) -> int:
    """The workflow's seed for retry jitter (the conductor passes it in `Started`)."""
    return int.from_bytes(hashlib.blake2b(workflow_id.encode(), digest_size=8).digest(), "big")


def _key(step: Step) -> str:
    """A task, or its compensation: `task` (`task:compensate`), the key of its ids and jitter."""
    return f"{step.task_id}:compensate" if step.compensation else step.task_id


def jitter_salt(seed: int, step: Step) -> str:
    """What the retry jitter of one step of a workflow is drawn from."""
    return f"{seed}:{_key(step)}"


def idempotency_key(workflow_id: str, step: Step) -> str:
    """Stable across the attempts of a step: `wf:task` (`wf:task:compensate`)."""
    return f"{workflow_id}:{_key(step)}"


def command_id(workflow_id: str, step: Step, attempt: int) -> str:
    """One attempt: `wf:task:N` (`wf:task:compensate:N`)."""
    return f"{idempotency_key(workflow_id, step)}:{attempt}"


def attempt_timer(workflow_id: str, step: Step, attempt: int) -> str:
    """The timer that fails one attempt when it runs too long."""
    return f"{idempotency_key(workflow_id, step)}:timeout:{attempt}"


def retry_timer(workflow_id: str, step: Step, attempt: int) -> str:
    """The timer that starts attempt `attempt` after its backoff."""
    return f"{idempotency_key(workflow_id, step)}:retry:{attempt}"


def workflow_timer(workflow_id: str) -> str:
    """The timer that times the whole workflow out."""
    return f"{workflow_id}:timeout"
