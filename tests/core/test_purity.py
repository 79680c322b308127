"""The core is pure: no Kafka client, no clock, no uuid, no randomness (issue 11)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "workflow"
MODULES = sorted(CORE.glob("*.py"))
FORBIDDEN = {
    "aiokafka",
    "faust",
    "kafka",
    "confluent_kafka",
    "time",
    "uuid",
    "random",
    "secrets",
    "asyncio",
    "socket",
    "threading",
}
# The decision modules do no I/O at all (the loader reads files; nothing else does).
NO_IO = {
    "machine.py",
    "choreography.py",
    "expressions.py",
    "definition.py",
    "validation.py",
    "states.py",
    "durations.py",
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_all_core_modules_are_checked() -> None:
    assert {p.name for p in MODULES} >= NO_IO | {"loader.py", "builder.py", "__init__.py"}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_core_module_imports_nothing_forbidden(path: Path) -> None:
    found = imported(path) & FORBIDDEN
    assert not found, f"{path.name} imports {sorted(found)}"
    if path.name in NO_IO:
        io = imported(path) & {"os", "io", "pathlib", "shutil", "subprocess", "urllib", "http"}
        assert not io, f"{path.name} imports {sorted(io)}"
        assert "open(" not in path.read_text()


def test_importing_the_core_loads_no_kafka_client() -> None:
    code = (
        "import sys, podium.workflow.machine, podium.workflow.loader, podium.workflow.builder\n"
        "bad = {'aiokafka', 'faust', 'kafka', 'confluent_kafka'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CORE.parent, timeout=60)
