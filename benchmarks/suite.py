"""The fixed benchmark suite: three shapes, the floor and both modes, on both brokers.

    python benchmarks/suite.py [--brokers tansu,apache-kafka] [--shapes chain,fanout,saga]
                               [--systems floor,orchestration,choreography]
                               [--latency-n 300] [--throughput-n 3000] [--concurrency 100]

For every broker, shape and system, on a fresh broker of its own (tansu slows down as
its memory logs grow): start the system (one process per service, plus the conductor
or the tracker; the floor's relays one process each), 21 warm-up workflows, latency
over `--latency-n` sequential workflows, throughput of `--throughput-n` at
`--concurrency` in flight (`harness.measure`); then every record left on the broker is
read once and counted by topic kind (`podium.compare.runner.kind_of`, the split
`podium compare` reports) for the messages and bytes per workflow. Each mode is also
given as a ratio to the floor of the same shape on the same broker in the same run.

Writes `benchmarks/results/latest.json` (after every system, so a crash keeps what was
measured) with the machine and its load average beside each figure, and the Markdown
table between the `suite` markers of `benchmarks/README.md` and of the project's README
(`--table-only` rewrites the tables from the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import floor_shapes
import orchestration
from brokers import broker
from harness import RESULTS_DIR, SystemFactory, machine, measure
from shapes import SHAPES, Shape

from podium.compare.runner import kind_of
from podium.runtime.changelog import read_partitions
from podium.runtime.kafka import make_consumer, partitions_of

OUT = RESULTS_DIR / "latest.json"
README = Path(__file__).resolve().parent / "README.md"
#: every file that shows the table between the markers: this folder's README and the project's
READMES = (README, README.parent.parent / "README.md")
MARKERS = ("<!-- suite:start -->", "<!-- suite:end -->")
BROKERS = {"tansu": "embedded tansu", "apache-kafka": "Apache Kafka (one node)"}
SYSTEMS = ("floor", "orchestration", "choreography")
#: workflows run before the measured ones: one to see every part ready, then 20
WARMUP = 21


def factory(system: str, shape: Shape) -> SystemFactory:
    if system == "floor":
        return lambda bootstrap: floor_shapes.system(bootstrap, shape)
    return lambda bootstrap: orchestration.chain(
        bootstrap, "per-step", f"{system}-{shape.name}", mode=system, shape=shape
    )


def floor_kind(topic: str) -> str:
    if topic.endswith(".step0"):
        return "triggers"
    return "completions" if topic.endswith(".end") else "outcomes"


async def traffic(bootstrap: str, workflows: int) -> dict[str, dict[str, float]]:
    """Every record on the broker, counted by topic kind, per workflow run."""
    consumer = make_consumer(bootstrap, group_id=None)
    await consumer.start()
    await asyncio.sleep(0)  # aiokafka's group-less routine starts before it can stop
    try:
        names = sorted(t for t in await consumer.topics() if not t.startswith("__"))
        partitions = {t: {tp.partition for tp in await partitions_of(consumer, t)} for t in names}
    finally:
        await consumer.stop()
    messages: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for topic in names:
        kind = floor_kind(topic) if topic.startswith("floor.") else kind_of(topic)
        async for record in read_partitions(bootstrap, topic, partitions[topic]):
            size = len(record.key or b"") + len(record.value or b"")
            size += sum(len(k) + len(v or b"") for k, v in record.headers)
            messages[kind] = messages.get(kind, 0) + 1
            sizes[kind] = sizes.get(kind, 0) + size
    return {
        "messages_per_workflow": {k: round(v / workflows, 2) for k, v in sorted(messages.items())},
        "bytes_per_workflow": {k: round(v / workflows, 1) for k, v in sorted(sizes.items())},
    }


async def one(bootstrap: str, system: str, shape: Shape, args: argparse.Namespace) -> dict:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = await measure(
        f"{system}-{shape.name}",
        factory(system, shape),
        bootstrap,
        latency_n=args.latency_n,
        throughput_n=args.throughput_n,
        concurrency=args.concurrency,
        steps=shape.tasks,
    )
    counted = await traffic(bootstrap, WARMUP + args.latency_n + args.throughput_n)
    return {
        **asdict(result),
        **counted,
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def with_ratios(doc: dict[str, Any]) -> dict[str, Any]:
    """Each mode against the floor of its shape on its broker."""
    for key, entry in doc["entries"].items():
        broker_name, shape, system = key.split("/")
        base = doc["entries"].get(f"{broker_name}/{shape}/floor")
        if system == "floor" or base is None:
            continue
        entry["p50_vs_floor"] = round(entry["p50"] / base["p50"], 2)
        entry["p99_vs_floor"] = round(entry["p99"] / base["p99"], 2)
        entry["throughput_vs_floor"] = round(entry["workflows_per_s"] / base["workflows_per_s"], 3)
    return doc


def save(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(with_ratios(doc), indent=2) + "\n")


def table(doc: dict[str, Any]) -> str:
    """The Markdown table of every entry, in suite order."""
    lines = [
        "| broker | shape | system | p50 ms | p99 ms | workflows/s | p50 / floor "
        "| throughput / floor | messages / wf (cmd, out, changelog) | bytes / wf | load avg |",
        "|---|---|---|--:|--:|--:|--:|--:|---|--:|---|",
    ]
    order = {name: k for k, name in enumerate([*BROKERS, *SHAPES, *SYSTEMS])}
    for key in sorted(doc["entries"], key=lambda k: [order.get(p, 99) for p in k.split("/")]):
        e = doc["entries"][key]
        broker_name, shape, system = key.split("/")
        m = e["messages_per_workflow"]
        split = ", ".join(f"{m.get(k, 0):g}" for k in ("commands", "outcomes", "changelogs"))
        ratio = e.get("p50_vs_floor")
        lines.append(
            f"| {broker_name} | {shape} | {system} | {e['p50']:.1f} | {e['p99']:.1f} "
            f"| {e['workflows_per_s']:,.0f} | {1.0 if system == 'floor' else ratio:.2f} "
            f"| {'1.00' if system == 'floor' else e.get('throughput_vs_floor')} "
            f"| {sum(m.values()):.1f} ({split}) | {sum(e['bytes_per_workflow'].values()):,.0f} "
            f"| {e['load_average'][0]}-{e['load_average'][1]} |"
        )
    return "\n".join(lines)


def write_table(doc: dict[str, Any], readme: Path = README) -> None:
    text = readme.read_text()
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"{readme}: no {start} ... {end} markers to write the table between")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    m = doc["machine"]
    note = (
        f"\n_{m['cpus']} CPUs, Python {m['python']}, host `{m['host']}`; "
        f"latency over {doc['latency_n']} sequential workflows, throughput {doc['throughput_n']} "
        f"at concurrency {doc['concurrency']}; each system on a fresh broker; "
        f"`python benchmarks/suite.py` ({doc['finished_at'] or 'unfinished'})._\n\n"
    )
    loads = [x for e in doc["entries"].values() for x in e["load_average"]]
    if loads and max(loads) > m["cpus"]:
        # other work on the machine shares its cores: say so beside the figures
        note += (
            f"**Measured while other work loaded the machine (load average {min(loads):g} to "
            f"{max(loads):g} on {m['cpus']} CPUs, per row in the last column): the times "
            "are low and noisy, and even the ratios to the floor carry the change of load "
            "between rows; the messages and bytes per workflow do not depend on it.**\n\n"
        )
    readme.write_text(f"{head}{start}{note}{table(doc)}\n{end}{tail}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--brokers", default=",".join(BROKERS), help="comma-separated: %(default)s")
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: %(default)s")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: %(default)s")
    p.add_argument("--latency-n", type=int, default=300)
    p.add_argument("--throughput-n", type=int, default=3_000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table-only", action="store_true", help="rewrite the README table")
    args = p.parse_args(argv)
    for option, known in (("brokers", BROKERS), ("shapes", SHAPES), ("systems", SYSTEMS)):
        names = [n.strip() for n in getattr(args, option).split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            p.error(f"--{option}: unknown {unknown or 'none given'}; known: {', '.join(known)}")
        setattr(args, option, names)
    for option in ("latency_n", "throughput_n", "concurrency"):
        if getattr(args, option) < 1:
            p.error(f"--{option.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.table_only:
        for readme in READMES:
            write_table(json.loads(args.out.read_text()), readme)
        return 0
    if os.environ.get("PODIUM_BOOTSTRAP_SERVERS"):
        print("suite: PODIUM_BOOTSTRAP_SERVERS ignored: every system gets a fresh broker")
    doc: dict[str, Any] = {
        "machine": machine(),
        "latency_n": args.latency_n,
        "throughput_n": args.throughput_n,
        "concurrency": args.concurrency,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished_at": None,
        "entries": {},
    }
    failures = []
    for broker_name in args.brokers:
        for shape_name in args.shapes:
            for system in args.systems:
                key = f"{broker_name}/{shape_name}/{system}"
                print(f"== {key}", flush=True)
                try:
                    with broker(broker_name, None) as bootstrap:
                        entry = asyncio.run(one(bootstrap, system, SHAPES[shape_name], args))
                except Exception as exc:  # one system failing must not lose the others
                    print(f"{key}: failed: {exc!r}", flush=True)
                    failures.append(key)
                    doc.setdefault("failed", {})[key] = repr(exc)
                    continue
                doc["entries"][key] = entry | {"broker": BROKERS[broker_name]}
                print(
                    f"{key}: p50 {entry['p50']} ms, {entry['workflows_per_s']} wf/s, "
                    f"{sum(entry['messages_per_workflow'].values()):.1f} messages/wf",
                    flush=True,
                )
                save(args.out, doc)
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save(args.out, doc)
    if args.out == OUT:  # a trial run elsewhere leaves the README's table alone
        for readme in READMES:
            with contextlib.suppress(SystemExit):
                write_table(json.loads(args.out.read_text()), readme)
    print(f"wrote {args.out}\n{table(with_ratios(doc))}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
