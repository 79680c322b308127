"""The request bodies the API takes, and the shapes of its main answers (for its OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from podium.events import Mode

#: what a workflow id given to the API may be: it names a path (`/api/workflows/{id}`)
WORKFLOW_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(min_length=1, max_length=200, description="The definition's name.")
    version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Its version (default: the latest)."
    )
    input: dict[str, Any] = Field(
        default_factory=dict, description="The workflow input, checked against its input schema."
    )
    mode: Mode | None = Field(None, description="Default: the API's PODIUM_MODE.")
    id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=WORKFLOW_ID,
        description="The workflow id (default: from the Idempotency-Key, else random).",
    )


class Triggered(BaseModel):
    workflow_id: str
    workflow: str
    version: int
    mode: Mode


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000, description="Said in the workflow's error.")


class CancelAccepted(BaseModel):
    workflow_id: str
    state: str = Field(description="The state recorded when the request was sent.")
    cancel: str = "requested"


class WorkflowList(BaseModel):
    workflows: list[dict[str, Any]] = Field(description="Rows as `podium list --json` prints.")
    total: int = Field(description="How many workflows the filters select.")
    counts: dict[str, int] = Field(
        description="By state, under the filters other than `state` (the list's tabs)."
    )


class Problem(BaseModel):
    detail: str | list[Any]
