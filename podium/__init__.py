"""Podium: multi-step workflows over Kafka, orchestrated or choreographed.

The public API is re-exported lazily (PEP 562) so that `import podium.kafka`
from a runtime does not drag in every block, and import arrows stay one-way:
the blocks (`conductor`, `services`) use `podium.settings`/`podium.kafka`; only
this facade and the CLI look back at the blocks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Task", "TaskError", "TaskService", "Workflow"]

_EXPORTS = {
    "TaskService": "services.service",
    "TaskError": "services.errors",
    "Workflow": "workflow.builder",
    "Task": "workflow.builder",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
