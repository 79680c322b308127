"""What the numbers cannot say, derived from the definition and the services: per mode, the
topics and consumer groups, who must know whom, where workflow state lives, and what a
change to the definition means redeploying."""

from __future__ import annotations

from typing import Any

from podium.events import topics
from podium.services.service import TaskService
from podium.workflow.definition import Definition
from podium.workflow.join import watched_types


def structure(definition: Definition, services: list[TaskService]) -> dict[str, dict[str, Any]]:
    """One object per mode (`orchestration`, `choreography`)."""
    types = _types(definition)
    used = [s for s in services if types & set(s.task_types)]
    owner = {t: s.name for s in used for t in s.task_types}
    shared = [topics.TRIGGERS, topics.WORKFLOWS, topics.DEAD_LETTER]

    orchestration_topics = [*shared, topics.CONDUCTOR_CHANGELOG, *topics.task_topics(types)]
    # choreography: every service reads the outcomes its tasks wait for; nothing is commanded
    choreography_topics = [
        *shared,
        topics.TRACKER_CHANGELOG,
        *(topics.outcomes(t) for t in sorted(types)),
        *(topics.choreography_changelog(s.name) for s in used),
    ]
    listens: dict[str, list[str]] = {}
    for service in used:
        mine = set(service.task_types)
        others = {owner[t] for t in watched_types([definition], mine) if t in owner}
        listens[service.name] = sorted(others - {service.name})
    return {
        "orchestration": {
            "topics": len(orchestration_topics),
            "topic_names": orchestration_topics,
            "consumer_groups": len(used) + 1,
            "group_names": [f"podium.service.{s.name}" for s in used] + ["podium.conductor"],
            "knows_the_definition": ["conductor"],
            "coupling": {s.name: [] for s in used} | {"conductor": [s.name for s in used]},
            "coupling_text": (
                f"each of the {len(used)} services knows only its own task types; the conductor "
                f"knows the whole definition and all {len(used)} services' task types"
            ),
            "state": "the conductor's memory, persisted to its compacted changelog "
            f"({topics.CONDUCTOR_CHANGELOG}); services keep no workflow state",
            "redeploy_on_change": (
                "the conductor only (a service too when it gains a new task type)"
            ),
        },
        "choreography": {
            "topics": len(choreography_topics),
            "topic_names": choreography_topics,
            "consumer_groups": len(used) + 1,
            "group_names": [f"podium.choreo.{s.name}" for s in used] + ["podium.tracker"],
            "knows_the_definition": [s.name for s in used] + ["tracker"],
            "coupling": listens,
            "coupling_text": "; ".join(
                f"{name} reacts to {', '.join(others) or 'triggers only'}"
                for name, others in listens.items()
            ),
            "state": "spread over the services: each one's join state in its own changelog "
            "(podium.choreo.<service>.changelog); the tracker keeps an observer's copy",
            "redeploy_on_change": (
                f"every service that hosts a task of it ({', '.join(s.name for s in used)}) "
                "and the tracker: each reads the definition"
            ),
        },
    }


def _types(definition: Definition) -> set[str]:
    types = {t.type for t in definition.tasks}
    types |= {t.compensate.type for t in definition.tasks if t.compensate is not None}
    return types


def longest_path(definition: Definition) -> int:
    """The most tasks one after another on a dependency path (the critical path's length)."""
    depth: dict[str, int] = {}
    by_id = {t.id: t for t in definition.tasks}

    def of(task_id: str) -> int:
        if task_id not in depth:  # the definition is acyclic: validated when it was built
            depth[task_id] = 1 + max((of(d) for d in by_id[task_id].depends_on), default=0)
        return depth[task_id]

    return max((of(t) for t in by_id), default=0)
