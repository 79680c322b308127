"""Definitions at scale: what `podium validate` costs for large and hostile files.

    python benchmarks/definitions.py [--sizes 5000,10000] [--out benchmarks/results/definitions.json]

Each case runs `podium validate FILE` in a fresh process (as a user, or a
conductor loading its definitions, would), then, in another, the load and the
compiled plan the conductor and the services build. Reported: wall time and
the process's peak RSS (imports included: ~55 MB of the figure).

Cases:

- ``chain N``: N tasks, each depending on the one before and mapping its
  output through CEL (`${ tasks.t<i-1>.output.x }`), written out in full;
- ``alias bomb``: 1 KB, nine levels of nine-fold YAML anchors inside one task
  input (9^8 = 43 million strings, each a `${ }` expression, once expanded):
  it must be refused, fast, naming the task and the field.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PODIUM = [sys.executable, "-m", "podium"]
PLAN = (
    "import sys; from podium.workflow.loader import load_definition; "
    "d = load_definition(sys.argv[1]); d.plan"
)


def chain(n: int) -> str:
    lines = ["name: chain", "version: 1", "tasks:"]
    for i in range(n):
        lines.append(f"  - id: t{i}\n    type: svc.step")
        if i:
            lines.append(f"    depends_on: [t{i - 1}]")
            lines.append(f'    input: {{x: "${{ tasks.t{i - 1}.output.x }}"}}')
        else:
            lines.append('    input: {x: "${ workflow.input.x }"}')
    return "\n".join(lines) + "\n"


def alias_bomb(levels: int = 9) -> str:
    lines = ["name: bomb", "version: 1", "tasks:", "  - id: a", "    type: svc.a", "    input:"]
    lines.append('      l0: &l0 ["${ workflow.input.x }"]')
    for i in range(1, levels):
        lines.append(f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def measure(command: list[str]) -> dict[str, Any]:
    """Wall time and peak RSS of one process running `command`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "exit": process.returncode,
        "said": (out + err).strip().splitlines()[-1][:160] if (out + err).strip() else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000", help="chain lengths, comma-separated")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"chain {int(n):,}", chain(int(n))) for n in args.sizes.split(",")]
        cases.append(("alias bomb", alias_bomb()))
        for name, text in cases:
            path = Path(tmp) / f"{name.replace(' ', '-').replace(',', '')}.yaml"
            path.write_text(text)
            validate = measure([*PODIUM, "validate", str(path)])
            row = {"case": name, "file_kb": round(len(text) / 1024), "validate": validate}
            if validate["exit"] == 0:
                row["load_and_plan"] = measure([sys.executable, "-c", PLAN, str(path)])
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        payload = {"machine": platform.platform(), "python": platform.python_version()}
        args.out.write_text(json.dumps({**payload, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
