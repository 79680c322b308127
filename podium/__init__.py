"""Podium: multi-step workflows over Kafka, orchestrated or choreographed.

Everything installs under this one package: the repository's folders are
mapped into it (`podium.events` from `events/`, `podium.workflow` from
`workflow/`, `podium.conductor` from `conductor/`, `podium.services` from
`services/`; see pyproject.toml). The public API is re-exported lazily (PEP 562)
so that `import podium.runtime.kafka` does not drag in every block, and import
arrows stay one-way (the layers are checked by import-linter).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Task", "TaskError", "TaskService", "Workflow"]

_EXPORTS = {
    "TaskService": "podium.services.service",
    "TaskError": "podium.services.errors",
    "Workflow": "podium.workflow.builder",
    "Task": "podium.workflow.builder",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
