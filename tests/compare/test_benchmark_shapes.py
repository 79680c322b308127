"""The benchmark suite's shapes (benchmarks/shapes.py, floor_shapes.py), without a broker:
each shape's definition loads, its services handle every task type of it, and the floor's
relays route a workflow of each shape to the end the Podium systems reach."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from podium.loading import load_services
from podium.workflow.catalog import Catalog
from podium.workflow.loader import load_definition

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module", autouse=True)
def on_path() -> None:
    # the benchmark scripts import one another by bare name, as they are run
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))


@pytest.mark.parametrize("name", ["chain", "fanout", "saga"])
def test_each_shape_loads_and_its_services_cover_it(name: str) -> None:
    from shapes import SHAPES

    shape = SHAPES[name]
    definition = load_definition(shape.definition)
    assert shape.definition.parent == shape.definitions
    services = load_services([f"{shape.module}:{p}" for p in shape.processes])
    handled = {t for s in services for t in s.task_types}
    assert Catalog([definition]).task_types <= handled


def _through_the_floor(shape: str, i: int) -> dict:
    """One workflow through the shape's relays, in memory, as their processes would pass it."""
    from floor_shapes import RELAYS
    from shapes import SHAPES

    memories: dict[str, dict[str, int]] = {r.name: {} for r in RELAYS[shape]}
    start = SHAPES[shape].input(i)
    queue = [("step0", {"id": "w", "input": start, "n": start.get("n")})]
    ends = []
    while queue:
        topic, doc = queue.pop(0)
        if topic == "end":
            ends.append(doc)
            continue
        for relay in RELAYS[shape]:
            if topic in relay.routes:
                queue += relay.routes[topic](doc, memories[relay.name])
    (end,) = ends
    return end


@pytest.mark.parametrize("shape", ["chain", "fanout", "saga"])
@pytest.mark.parametrize("i", [0, 9])
def test_the_floor_ends_each_shape_as_podium_does(shape: str, i: int) -> None:
    from shapes import SHAPES

    end = _through_the_floor(shape, i)
    assert SHAPES[shape].check(i, end["state"], end["output"]) is None
