"""The broker a benchmark runs on: the configured one, or a fresh one of a kind.

`--broker tansu|apache-kafka` means the same in every benchmark that takes it
(run.py, suite.py, overload.py, soak.py): when PODIUM_BOOTSTRAP_SERVERS is unset,
start the embedded tansu, or a single-node Apache Kafka from its jars
(`make kafka-jars`), and stop it on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from podium.apache_kafka import ApacheKafka, ApacheKafkaError, unavailable
from podium.broker import bootstrap_or_embedded

BROKERS = ["tansu", "apache-kafka"]


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="tansu",
        help="the broker started when PODIUM_BOOTSTRAP_SERVERS is unset (default: %(default)s)",
    )


@contextlib.contextmanager
def broker(kind: str, configured: str | None) -> Iterator[str]:
    """Bootstrap servers: the configured ones, or a new broker of this kind's."""
    if configured or kind == "tansu":
        with bootstrap_or_embedded(configured) as bootstrap:
            yield bootstrap
        return
    reason = unavailable()
    if reason:
        raise ApacheKafkaError(reason)
    with ApacheKafka(nodes=1) as kafka:
        pid = kafka.nodes[0].process.pid if kafka.nodes[0].process else None
        print(
            f"Apache Kafka on {kafka.bootstrap_servers} (started in {kafka.start_seconds:.1f} s)",
            file=sys.stderr,
        )
        os.environ["PODIUM_BENCH_BROKER_PID"] = str(pid)  # for the systems' CPU figures
        try:
            yield kafka.bootstrap_servers
        finally:
            os.environ.pop("PODIUM_BENCH_BROKER_PID", None)
