"""What the history store's rows mean to a reader: the list, a status, a history.

Pure functions over the rows `Database` returns (dicts), shared by the CLI and,
later, the HTTP API. A history is the transitions whose times the rows hold: a
workflow's start and end; each attempt's Running (its command, or its handler's
start where no command was sent) and its end (a workflow runs from its first
task's start when that came before its announced start); plus three that only
the conductor's memory holds and that are derived here, when read, from the rest:

- `Retrying`: a failed attempt that was tried again (the event said Failed);
- `Skipped` of a task the conductor skipped (orchestration sends no event for
  it): when the last of its dependencies was resolved, by the stored definition;
- `Compensating`: when the failure that set the saga off was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from podium.events import WorkflowCompleted, WorkflowFailed

#: `task_id` of a workflow's own transitions
WORKFLOW = ""

Row = Mapping[str, Any]
Ended = WorkflowCompleted | WorkflowFailed


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def ended(workflow: Row) -> Ended | None:
    """The end event's payload as it was sent, or None while the workflow runs."""
    result = workflow["result"]
    if result is None:
        return None
    model = WorkflowCompleted if result["state"] == "Succeeded" else WorkflowFailed
    return model.model_validate(result)


def summary(workflow: Row) -> dict[str, Any]:
    """One line of `podium list`; an ended workflow's times as its result says them."""
    result = workflow["result"] or {}
    return {
        "workflow_id": workflow["workflow_id"],
        "workflow": workflow["name"],
        "version": workflow["version"],
        "mode": workflow["mode"],
        "state": workflow["state"],
        "started_at": result.get("started_at") or iso(workflow["started_at"]),
        "ended_at": result.get("ended_at") or iso(workflow["ended_at"]),
        "duration_s": workflow["duration_s"],
    }


def attempt(row: Row) -> dict[str, Any]:
    """One attempt as the API shows it: times as ISO text, durations in seconds."""
    return {
        "task_id": row["task_id"],
        "task_type": row["task_type"],
        "attempt": row["attempt"],
        "compensation": row["compensation"],
        "state": row["state"],
        "input": row["input"],
        "output": row["output"],
        "error": row["error"],
        "scheduled_at": iso(row["scheduled_at"]),
        "started_at": iso(row["started_at"]),
        "ended_at": iso(row["ended_at"]),
        "duration_s": row["duration_s"],
        "queued_s": row["queued_s"],
        "reason": row["reason"],
    }


def dag(definition: Mapping[str, Any] | None) -> dict[str, Any]:
    """A definition's graph: a node per task, an edge per dependency (empty: none stored)."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    for task in (definition or {}).get("tasks", ()):
        depends_on = list(task.get("depends_on") or ())
        compensate = task.get("compensate") or {}
        nodes.append(
            {
                "id": task["id"],
                "type": task.get("type"),
                "depends_on": depends_on,
                "when": task.get("when"),
                "compensate": compensate.get("type"),
            }
        )
        edges.extend({"from": upstream, "to": task["id"]} for upstream in depends_on)
    return {"nodes": nodes, "edges": edges}


def progress(
    workflow: Row, attempts: Sequence[Row], definition: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A running workflow in the shape of a result (`podium.client.result_json`)."""
    specs = {t["id"]: t for t in (definition or {}).get("tasks", ())}
    tasks: dict[str, dict[str, Any]] = {
        task_id: {"state": "Pending", "attempts": 0, "output": None, "error": None}
        for task_id in specs
    }
    for row in attempts:  # ordered by task and attempt: the last one stays
        if row["compensation"]:
            continue
        state = row["state"]
        error = row["error"]
        retry = specs.get(row["task_id"], {}).get("retry") or {}
        retryable = bool(error) and error.get("retryable", True)
        if state == "Failed" and retryable and row["attempt"] < retry.get("max_attempts", 1):
            state = "Retrying"
        tasks[row["task_id"]] = {
            "state": state,
            "attempts": row["attempt"],
            "output": row["output"],
            "error": error,
        }
    return {
        "workflow_id": workflow["workflow_id"],
        "workflow": workflow["name"],
        "version": workflow["version"],
        "mode": workflow["mode"],
        "state": workflow["state"],
        "output": workflow["output"],
        "error": workflow["error"],
        "started_at": iso(workflow["started_at"]),
        "ended_at": iso(workflow["ended_at"]),
        "tasks": tasks,
    }


def history(
    workflow: Row, attempts: Sequence[Row], definition: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Every transition in order, each with the state it left and how long it stayed there."""
    entries = _transitions(workflow, attempts)
    _started_first(entries)
    _retrying(entries)
    entries += _skipped(workflow, entries, definition)
    entries += _compensating(workflow, entries)
    entries.sort(key=lambda e: (e["at"], _phase(e)))
    details = {(a["task_id"], a["compensation"], a["attempt"]): a for a in attempts}
    last: dict[tuple[str, bool], dict[str, Any]] = {}
    out = []
    for entry in entries:
        subject = (entry["task_id"], entry["compensation"])
        before = last.get(subject)
        last[subject] = entry
        attempt = details.get((entry["task_id"], entry["compensation"], entry["attempt"]), {})
        state = entry["state"]
        out.append(
            {
                "time": iso(entry["at"]),
                "task_id": entry["task_id"] or None,
                "compensation": entry["compensation"],
                "attempt": entry["attempt"] or None,
                "from_state": before["state"] if before else _initial(entry),
                "to_state": state,
                "duration_s": entry["at"] - before["at"] if before else None,
                "input": attempt.get("input") if state == "Running" else None,
                "output": attempt.get("output") if state == "Succeeded" else None,
                "error": attempt.get("error") if state in ("Failed", "Retrying") else None,
                "reason": entry["reason"],
            }
        )
    return out


def _transitions(workflow: Row, attempts: Sequence[Row]) -> list[dict[str, Any]]:
    """The transitions whose times the rows hold."""
    entries = []
    if workflow["started_at"] is not None:
        entries.append(_entry(workflow, WORKFLOW, "Running", workflow["started_at"]))
    for row in attempts:
        task_id, compensation, attempt = row["task_id"], row["compensation"], row["attempt"]
        times = [t for t in (row["scheduled_at"], row["started_at"]) if t is not None]
        if attempt and times:
            entries.append(_entry(workflow, task_id, "Running", min(times), compensation, attempt))
        # an attempt whose end only the workflow's end reports (it timed out): by then
        end = row["ended_at"] if row["ended_at"] is not None else workflow["ended_at"]
        if row["state"] != "Running" and end is not None:
            entry = _entry(workflow, task_id, row["state"], end, compensation, attempt)
            entry["reason"] = row["reason"]
            entries.append(entry)
    if workflow["state"] != "Running" and workflow["ended_at"] is not None:
        entries.append(_entry(workflow, WORKFLOW, workflow["state"], workflow["ended_at"]))
    return entries


def _initial(entry: Row) -> str | None:
    return None if entry["task_id"] == WORKFLOW else "Pending"


def _phase(entry: Row) -> int:
    """Order among transitions at one instant: the workflow starts first and ends last."""
    if entry["task_id"] != WORKFLOW:
        return 3 if entry["compensation"] else 1  # a saga starts before its first undo
    return 0 if entry["state"] == "Running" else 2 if entry["state"] == "Compensating" else 4


def _started_first(entries: list[dict[str, Any]]) -> None:
    """A workflow runs from its first task's start if that came before its announced start
    (choreography: the services may start before the tracker announces the workflow)."""
    start = next((e for e in entries if e["task_id"] == WORKFLOW and e["state"] == "Running"), None)
    if start is not None and entries:
        start["at"] = min(e["at"] for e in entries)


def _retrying(entries: list[dict[str, Any]]) -> None:
    """A failed attempt followed by another of the same task was a retry, not the end."""
    tried: dict[tuple[str, bool], int] = {}
    for e in entries:
        subject = (e["task_id"], e["compensation"])
        tried[subject] = max(tried.get(subject, 0), e["attempt"])
    for e in entries:
        if e["state"] == "Failed" and e["attempt"] < tried[(e["task_id"], e["compensation"])]:
            e["state"] = "Retrying"


def _skipped(
    workflow: Row, entries: list[dict[str, Any]], definition: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Skips the conductor decided: when the last dependency of the task was resolved."""
    result = workflow["result"] or {}
    known = {e["task_id"] for e in entries if e["state"] == "Skipped" and not e["compensation"]}
    wanted = [
        task_id
        for task_id, task in result.get("tasks", {}).items()
        if task["state"] == "Skipped" and task_id not in known
    ]
    if not wanted:
        return []
    depends = {t["id"]: t.get("depends_on", ()) for t in (definition or {}).get("tasks", ())}
    resolved: dict[str, float] = {
        e["task_id"]: e["at"]
        for e in entries
        if e["state"] in ("Succeeded", "Skipped") and not e["compensation"]
    }
    started = next((e["at"] for e in entries if e["task_id"] == WORKFLOW), None)
    fallback = workflow["ended_at"]

    def when(task_id: str, seen: frozenset[str] = frozenset()) -> float | None:
        if task_id in resolved:
            return resolved[task_id]
        if task_id not in depends or task_id in seen:
            return None
        times = [when(d, seen | {task_id}) for d in depends[task_id]]
        if any(t is None for t in times):
            return None
        at = max((t for t in times if t is not None), default=started)
        if at is not None:
            resolved[task_id] = at
        return at

    derived = []
    for task_id in wanted:
        at = when(task_id)
        derived.append(_entry(workflow, task_id, "Skipped", at if at is not None else fallback))
    return derived


def _compensating(workflow: Row, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The saga began with the failure that was not retried (the first one, if several), or
    with its first undo, whichever came first (a cancel, which sets it off, is not recorded)."""
    compensations = [e["at"] for e in entries if e["compensation"]]
    if not compensations and workflow["state"] not in ("Compensating", "Compensated"):
        return []
    if any(e["task_id"] == WORKFLOW and e["state"] == "Compensating" for e in entries):
        return []
    failures = [
        e["at"]
        for e in entries
        if e["task_id"] != WORKFLOW and not e["compensation"] and e["state"] == "Failed"
    ]
    at = min([*failures, *compensations] or [workflow["ended_at"] or 0.0])
    return [_entry(workflow, WORKFLOW, "Compensating", at)]


def _entry(
    workflow: Row,
    task_id: str,
    state: str,
    at: float,
    compensation: bool = False,
    attempt: int = 0,
) -> dict[str, Any]:
    return {
        "workflow_id": workflow["workflow_id"],
        "task_id": task_id,
        "compensation": compensation,
        "attempt": attempt,
        "state": state,
        "at": at,
        "reason": None,
    }
