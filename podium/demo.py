"""`make demo`: the shipped examples, run the way a user runs them.

One embedded broker for the whole demo; each step is a real `podium run`
command, printed before it runs, so it can be copied.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from podium.broker import EmbeddedBroker

ORDER = ["examples/order/order.yaml", "--services", "examples.order.shop:services"]
ETL = ["examples/etl/etl.yaml", "--services", "examples.etl.pipeline:services"]

STEPS = [
    ("The order saga: reserve stock, charge, ship", ORDER, {"sku": "A-1", "qty": 2, "amount": 30}),
    (
        "The order saga again, with an amount the bank declines for good: watch it compensate",
        ORDER,
        {"sku": "A-1", "qty": 2, "amount": 5000},
    ),
    (
        "The ETL pipeline: three parallel transforms, one retried twice, `enrich` skipped",
        ETL,
        {"source": "s3://bucket/2026-11-25"},
    ),
]


def main() -> None:
    import orjson

    with EmbeddedBroker() as broker:
        print(f"Embedded broker (tansu) on {broker.bootstrap_servers}\n")
        env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        for title, target, payload in STEPS:
            args = ["podium", "run", *target, "--input", orjson.dumps(payload).decode()]
            print(f"== {title}\n$ {shlex.join(args)}", flush=True)
            subprocess.run(
                [sys.executable, "-m", "podium", *args[1:]],
                env={**env, "PODIUM_LOG_LEVEL": "WARNING"},
                check=False,
            )
            print(flush=True)
    print(
        "Next: add --json for the machine-readable result; run the pieces yourself with\n"
        "`podium broker`, `podium service`, `podium conductor` and `podium trigger --wait`;\n"
        "the definitions are in examples/*/*.yaml and the services beside them."
    )


if __name__ == "__main__":
    main()
