"""The suite's three workflow shapes, as the Podium systems and the floor run them.

- `chain`: five tasks in a row (`chain/`), output `n + 5`;
- `fanout`: one task splits, ten tasks of one type run in parallel, one joins their
  outputs (`fanout/`), output `total = 10 * (n + 1)`;
- `saga`: the order saga of `examples/order` (reserve, charge, ship; an amount over
  1,000 is declined for good and the reservation released): every tenth run is
  declined, so 10 % of the charges fail for good and end Compensated.

Each Podium process gets `--definitions <folder>`; a shape's services run one process
each (`processes`, attribute names in its services module). `check` says what is wrong
with a workflow's end, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


@dataclass(frozen=True)
class Shape:
    name: str
    definitions: Path  # the folder every process is given with --definitions
    definition: Path
    module: str  # the services' module
    processes: tuple[str, ...]  # one service process per attribute of that module
    tasks: int  # tasks run per workflow, for tasks/s (the saga: 3 either way)
    input: Callable[[int], dict[str, Any]]
    check: Callable[[int, str, dict[str, Any] | None], str | None]


def _chain_check(i: int, state: str, output: dict[str, Any] | None) -> str | None:
    return None if state == "Succeeded" and output == {"n": i + 5} else f"{state} {output}"


def _fanout_check(i: int, state: str, output: dict[str, Any] | None) -> str | None:
    expected = {"total": 10 * (i + 1)}
    return None if state == "Succeeded" and output == expected else f"{state} {output}"


def declined(i: int) -> bool:
    """Every tenth saga run is declined for good (10 % of the charges)."""
    return i % 10 == 9


def _saga_input(i: int) -> dict[str, Any]:
    return {"sku": "A-1", "qty": 1, "amount": 2000 if declined(i) else 30}


def _saga_check(i: int, state: str, output: dict[str, Any] | None) -> str | None:
    expected = "Compensated" if declined(i) else "Succeeded"
    return None if state == expected else f"{state}, expected {expected}"


SHAPES = {
    "chain": Shape(
        "chain",
        BENCH / "chain",
        BENCH / "chain" / "chain.yaml",
        "benchmarks.chain.services",
        ("s1", "s2", "s3", "s4", "s5"),
        5,
        lambda i: {"n": i},
        _chain_check,
    ),
    "fanout": Shape(
        "fanout",
        BENCH / "fanout",
        BENCH / "fanout" / "fanout.yaml",
        "benchmarks.fanout.services",
        ("split", "work", "join"),
        12,
        lambda i: {"n": i},
        _fanout_check,
    ),
    "saga": Shape(
        "saga",
        ROOT / "examples" / "order",
        ROOT / "examples" / "order" / "order.yaml",
        "examples.order.shop",
        ("inventory", "payments", "shipping"),
        3,
        _saga_input,
        _saga_check,
    ),
}
