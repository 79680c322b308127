"""Resolving `MODULE:OBJ` references to task services, as uvicorn resolves apps."""

from __future__ import annotations

import importlib
import os
import sys

from podium.services.service import TaskService


class LoadError(ValueError):
    pass


def load_services(references: list[str]) -> list[TaskService]:
    """Import each `MODULE:OBJ`; OBJ is a TaskService or a list of them."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    found: list[TaskService] = []
    for reference in references:
        module_name, sep, attribute = reference.partition(":")
        if not sep or not module_name or not attribute:
            raise LoadError(f"{reference!r}: expected MODULE:OBJ, e.g. shop:inventory")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise LoadError(f"{reference!r}: cannot import {module_name!r}: {exc}") from exc
        try:
            obj = getattr(module, attribute)
        except AttributeError:
            raise LoadError(f"{reference!r}: module {module_name!r} has no {attribute!r}") from None
        items = obj if isinstance(obj, list | tuple) else [obj]
        for item in items:
            if not isinstance(item, TaskService):
                raise LoadError(f"{reference!r}: {type(item).__name__} is not a TaskService")
            found.append(item)
    names = [s.name for s in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LoadError(f"service(s) named twice: {', '.join(duplicates)}")
    return found
