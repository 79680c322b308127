"""The workflows a stateful consumer owns: decoded while in use, as JSON when not.

A burst of triggers starts as many workflows as it holds (the tracker cannot hold
choreography back: the services start them on their own, and each participant keeps
a join for every workflow it plays a part in). A decoded `WorkflowState` of a
five-task chain takes ~23 KB of memory, its JSON ~2.5 KB; a participant's `Join`
~4 KB against well under 1 KB. So only the `hot` most recently used entries stay
decoded, which is every workflow of a steady load: nothing is encoded or decoded
then. The others wait as their JSON (as the changelogs write them, defaults left
out) and are decoded when an event reaches them again.

An entry read back from JSON is a new object: whoever holds one across an `await`
must look it up again by its workflow id before changing it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from pydantic import BaseModel

from podium.events import Mode

M = TypeVar("M", bound=BaseModel)

#: a workflow's partition, mode and state (the conductor's, the tracker's) or join
Entry = tuple[int, Mode, M]


class Owned(Generic[M]):
    def __init__(self, hot: int, model: type[M]) -> None:
        if hot < 1:
            raise ValueError("at least one state stays decoded (the one being decided)")
        self.hot = hot
        self.model = model
        self._decoded: OrderedDict[str, Entry[M]] = OrderedDict()
        self._cold: dict[str, tuple[int, Mode, str]] = {}

    def get(self, workflow_id: str) -> Entry[M] | None:
        entry = self._decoded.get(workflow_id)
        if entry is not None:
            self._decoded.move_to_end(workflow_id)
            return entry
        cold = self._cold.pop(workflow_id, None)
        if cold is None:
            return None
        partition, mode, value = cold
        entry = (partition, mode, self.model.model_validate_json(value))
        self._keep(workflow_id, entry)
        return entry

    def __getitem__(self, workflow_id: str) -> Entry[M]:
        entry = self.get(workflow_id)
        if entry is None:
            raise KeyError(workflow_id)
        return entry

    def __setitem__(self, workflow_id: str, entry: Entry[M]) -> None:
        self._cold.pop(workflow_id, None)
        self._keep(workflow_id, entry)

    def pop(self, workflow_id: str) -> Entry[M]:
        entry = self[workflow_id]
        del self._decoded[workflow_id]
        return entry

    def __delitem__(self, workflow_id: str) -> None:
        if self._decoded.pop(workflow_id, None) is None:
            del self._cold[workflow_id]

    def __contains__(self, workflow_id: object) -> bool:
        return workflow_id in self._decoded or workflow_id in self._cold

    def __len__(self) -> int:
        return len(self._decoded) + len(self._cold)

    def on(self, partitions: Iterable[int]) -> list[str]:
        """The ids of the workflows that live on these partitions."""
        wanted = set(partitions)
        hot = [w for w, (p, _, _) in self._decoded.items() if p in wanted]
        return hot + [w for w, (p, _, _) in self._cold.items() if p in wanted]

    def _keep(self, workflow_id: str, entry: Entry[M]) -> None:
        self._decoded[workflow_id] = entry
        self._decoded.move_to_end(workflow_id)
        while len(self._decoded) > self.hot:
            coldest, (partition, mode, model) = self._decoded.popitem(last=False)
            self._cold[coldest] = (partition, mode, model.model_dump_json(exclude_defaults=True))
