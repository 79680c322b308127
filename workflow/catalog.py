"""The definitions a process knows, by name and version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from podium.workflow.definition import Definition


class UnknownWorkflow(LookupError):
    pass


class Catalog:
    def __init__(self, definitions: Iterable[Definition] | Mapping[tuple[str, int], Definition]):
        items = definitions.values() if isinstance(definitions, Mapping) else definitions
        self._by_key: dict[tuple[str, int], Definition] = {d.key: d for d in items}

    def get(self, name: str, version: int | None = None) -> Definition:
        """The definition `name` at `version`, or its latest version when None."""
        if version is not None:
            found = self._by_key.get((name, version))
        else:
            versions = [d for (n, _), d in self._by_key.items() if n == name]
            found = max(versions, key=lambda d: d.version) if versions else None
        if found is None:
            known = ", ".join(f"{n} v{v}" for n, v in sorted(self._by_key)) or "none"
            wanted = name if version is None else f"{name} v{version}"
            raise UnknownWorkflow(f"unknown workflow {wanted} (known: {known})")
        return found

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def task_types(self) -> set[str]:
        """Every task type (and compensation type) the definitions use."""
        types: set[str] = set()
        for definition in self._by_key.values():
            for task in definition.tasks:
                types.add(task.type)
                if task.compensate is not None:
                    types.add(task.compensate.type)
        return types
