"""Durations as written in definitions: ``250ms``, ``5s``, ``2m``, ``1h`` or a number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds; raise ``ValueError`` with a readable message."""
    if isinstance(value, bool):
        raise ValueError(
            f"invalid duration {value!r}: use 250ms, 5s, 2m, 1h or a number of seconds"
        )
    if isinstance(value, int | float):
        if value < 0 or value != value:
            raise ValueError(f"invalid duration {value!r}: must be >= 0")
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f"invalid duration {value!r}: use 250ms, 5s, 2m, 1h or a number of seconds")


def format_duration(seconds: float) -> str:
    """The shortest readable form of ``seconds`` (for messages and summaries)."""
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
