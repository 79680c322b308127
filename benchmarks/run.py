"""Run the 5-step chain benchmark for each system on one broker and write the figures.

    python benchmarks/run.py [--systems floor,...] [--broker tansu|apache-kafka]
                             [--out benchmarks/results/chain.json]

Uses PODIUM_BOOTSTRAP_SERVERS when set, otherwise starts one broker of the
`--broker` kind for the whole run (`--fresh-broker`: one per system): the
embedded tansu (default), or a single-node Apache Kafka from its jars
(`make kafka-jars`). Each system runs in turn: ready-check, 300 sequential
workflows (latency), then 3,000 workflows with 100 in flight (throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import brokers
import choreography
import floor
import orchestration
from harness import RESULTS_DIR, Result, SystemFactory, measure, print_results, write_results

from podium.runtime.settings import Settings

# name -> factory(bootstrap) -> async context manager yielding a ready harness.Chain
SYSTEMS: dict[str, SystemFactory] = {
    "floor": floor.chain,
    "orchestration": orchestration.per_step,  # one process per task service
    "orchestration-1proc": orchestration.one_process,  # all five services in one process
    "choreography": choreography.per_step,  # one process per task service + the tracker
    "choreography-1proc": choreography.one_process,  # all five services in one + the tracker
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: %(default)s")
    brokers.add_option(p)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default: results/chain.json; chain-apache-kafka.json on Kafka)",
    )
    p.add_argument("--latency-n", type=int, default=300)
    p.add_argument("--throughput-n", type=int, default=3_000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        default=None,
        help="consumer fetch_max_wait_ms for every system (PODIUM_CONSUMER__FETCH_MAX_WAIT_MS)",
    )
    p.add_argument(
        "--fresh-broker",
        action="store_true",
        help="a new broker per system (tansu slows as its memory logs grow)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy the conductor (tracker) and a service during throughput (podium systems)",
    )
    p.add_argument(
        "--driver",
        choices=["client", "wire"],
        default="client",
        help="the Podium systems' driver: podium.client, or benchmarks/wire_driver.py, which "
        "speaks only the wire contract (plain aiokafka and JSON)",
    )
    p.add_argument(
        "--loopstats",
        action="store_true",
        help="time the consume loops of the podium processes (benchmarks/loopstats.py)",
    )
    return p.parse_args(argv)


async def run_all(bootstrap: str, names: list[str], args: argparse.Namespace) -> list[Result]:
    results = []
    for name in names:
        print(f"== {name} on {bootstrap}", flush=True)
        result = await measure(
            name,
            SYSTEMS[name],
            bootstrap,
            latency_n=args.latency_n,
            throughput_n=args.throughput_n,
            concurrency=args.concurrency,
        )
        print_results([result])
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        print(f"unknown systems {unknown}; known: {sorted(SYSTEMS)}", file=sys.stderr)
        return 2
    if args.fetch_max_wait_ms is not None:  # child processes of every system read it too
        os.environ["PODIUM_CONSUMER__FETCH_MAX_WAIT_MS"] = str(args.fetch_max_wait_ms)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        os.environ["PODIUM_BENCH_PROFILE"] = str(args.profile.resolve())
    if args.loopstats:
        os.environ["PODIUM_BENCH_LOOPSTATS"] = "1"
    os.environ["PODIUM_BENCH_DRIVER"] = args.driver
    settings = Settings()
    groups = [[n] for n in names] if args.fresh_broker else [names]
    results = []
    for group in groups:
        with brokers.broker(args.broker, settings.bootstrap_servers) as bootstrap:
            results += asyncio.run(run_all(bootstrap, group, args))
    kind = {"tansu": "embedded tansu", "apache-kafka": "Apache Kafka (one node)"}[args.broker]
    out = args.out or RESULTS_DIR / (
        "chain.json" if args.broker == "tansu" else f"chain-{args.broker}.json"
    )
    write_results(
        out,
        results,
        broker="external" if settings.bootstrap_servers else kind,
        fetch_max_wait_ms=Settings().consumer.fetch_max_wait_ms or "as suits the broker",
        driver=args.driver,
    )
    print(f"\nwrote {out}")
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
