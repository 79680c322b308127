"""`make demo`: the shipped examples, run the way a user runs them.

One embedded broker for the whole demo; each step is a real `podium run`
command, printed before it runs, so it can be copied. Each run records its
workflow in the history store (`./podium-history.db`); the demo ends by listing them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from podium.broker import EmbeddedBroker
from podium.history.database import default_url

ORDER = ["examples/order/order.yaml", "--services", "examples.order.shop:services"]
ETL = ["examples/etl/etl.yaml", "--services", "examples.etl.pipeline:services"]

EXAMPLES = [
    ("the order saga: reserve stock, charge, ship", ORDER, {"sku": "A-1", "qty": 2, "amount": 30}),
    (
        "the order saga with an amount the bank declines for good: watch it compensate",
        ORDER,
        {"sku": "A-1", "qty": 2, "amount": 5000},
    ),
    (
        "the ETL pipeline: three parallel transforms, one retried twice, `enrich` skipped",
        ETL,
        {"source": "s3://bucket/2026-11-25"},
    ),
]
MODES = [
    ("orchestration", "a conductor sends commands to the services and drives the state machine"),
    ("choreography", "no conductor: each service reacts to the outcomes it waits for"),
]


def main() -> None:
    import orjson

    with EmbeddedBroker() as broker:
        print(f"Embedded broker (tansu) on {broker.bootstrap_servers}\n")
        env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        for mode, how in MODES:
            print(f"######## {mode.upper()}: {how}\n")
            for title, target, payload in EXAMPLES:
                args = ["podium", "run", *target, "--input", orjson.dumps(payload).decode()]
                args += ["--mode", mode]
                print(f"== {mode}: {title}\n$ {shlex.join(args)}", flush=True)
                subprocess.run(
                    [sys.executable, "-m", "podium", *args[1:]],
                    env={**env, "PODIUM_LOG_LEVEL": "WARNING"},
                    check=False,
                )
                print(flush=True)
    history = os.environ.get("PODIUM_HISTORY_URL") or default_url()
    print(f"######## HISTORY: every run above was recorded in {history}\n")
    print("$ podium list", flush=True)
    subprocess.run([sys.executable, "-m", "podium", "list", "--limit", "6"], check=False)
    print(
        "\nThen `podium status ID` (the result a run printed) and `podium history ID` (its\n"
        "transitions, with times) for any of those ids.\n"
    )
    print(
        "Next: add --json for the machine-readable result; run the pieces yourself with\n"
        "`podium broker`, `podium service [--mode choreography]`, `podium conductor` or\n"
        "`podium tracker`, `podium history-store`, and `podium trigger NAME --wait`; the\n"
        "definitions are in examples/*/*.yaml and their services beside them (README.md\n"
        "walks through it)."
    )
    # the last line: the one command that shows these runs in the browser
    print("\nOpen the dashboard on these workflows: podium api  (then http://127.0.0.1:8000/)")


if __name__ == "__main__":
    main()
