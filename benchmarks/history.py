"""How fast the history store writes: sustained rows/s into SQLite and PostgreSQL.

The workload is the chain benchmark's workflow (`chain/chain.yaml`, five tasks in a
row) as orchestration puts it on the wire: a start, then per task a command, a
started marker and an outcome, then the end with its task summary (17 events,
6 rows once merged: the workflow and its 5 attempts).

Two stages, each on SQLite (a file in a temporary folder) and on PostgreSQL (a
throwaway server from Debian's binaries, default durability: fsync on):

- `database`: `Database.write` alone, the events cut into batches of `--batch`
  (the runtime's `max_poll_records`), one transaction each, back to back;
- `kafka`: the whole history store (`Recorder`) on a fresh embedded broker that
  already holds `--workflows` workflows' events: from its partition assignment
  until the last workflow's end is in the database (consume, decode, merge, write,
  commit). This is the rate at which it drains a backlog, i.e. what it sustains.

`rows/s` counts row upserts (a row touched in two batches counts twice: the
workload interleaves 3,000 workflows, so a workflow's events span batches);
`workflows/s` is the figure to hold against the chain benchmark's throughput
(~400-700 workflows/s on this machine): the store keeps up while it is higher.

    python benchmarks/history.py [--stages database,kafka] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.history.postgres: the throwaway server

from harness import RESULTS_DIR, machine, table  # noqa: E402

from podium.broker import EmbeddedBroker  # noqa: E402
from podium.events import (  # noqa: E402
    CloudEvent,
    Mode,
    TaskCommand,
    TaskStarted,
    TaskSucceeded,
    TaskSummary,
    WorkflowCompleted,
    WorkflowStarted,
    encode,
    new_event,
    topics,
)
from podium.history.database import Database  # noqa: E402
from podium.history.recorder import Recorder  # noqa: E402
from podium.history.rows import Batch  # noqa: E402
from podium.runtime.kafka import create_topics, make_producer  # noqa: E402
from podium.runtime.settings import Settings  # noqa: E402
from podium.workflow.catalog import Catalog  # noqa: E402
from podium.workflow.loader import load_definition  # noqa: E402
from tests.history.postgres import create_database, postgres_server, unavailable  # noqa: E402

CHAIN = load_definition(ROOT / "benchmarks" / "chain" / "chain.yaml")
TASKS = [(task.id, task.type) for task in CHAIN.tasks]
EVENTS_PER_WORKFLOW = 2 + 3 * len(TASKS)


def chain_events(workflow_id: str, n: int) -> list[tuple[str, CloudEvent]]:
    """(topic, event) for one chain workflow, in the order orchestration produces them."""
    start = time.time()
    out: list[tuple[str, CloudEvent]] = []

    def add(topic: str, payload: Any, id: str) -> None:
        out.append((topic, new_event(payload, source="bench", workflow_id=workflow_id, id=id)))

    common = {"workflow": CHAIN.name, "version": CHAIN.version}
    add(topics.WORKFLOWS, WorkflowStarted(**common, input={"n": n}, mode=Mode.ORCHESTRATION),
        f"{workflow_id}:started")  # fmt: skip
    for step, (task_id, task_type) in enumerate(TASKS, start=1):
        command_id = f"{workflow_id}:{task_id}:1"
        attempt = {**common, "command_id": command_id, "task_id": task_id,
                   "task_type": task_type, "attempt": 1}  # fmt: skip
        key = f"{workflow_id}:{task_id}"
        add(topics.commands(task_type), TaskCommand(**attempt, input={"n": n + step - 1},
            idempotency_key=key), command_id)  # fmt: skip
        add(topics.outcomes(task_type), TaskStarted(**attempt), f"{command_id}:started")
        add(topics.outcomes(task_type), TaskSucceeded(**attempt, output={"n": n + step}),
            f"{command_id}:succeeded")  # fmt: skip
    summary = {t: TaskSummary(state="Succeeded", attempts=1, output={"n": n + i})
               for i, (t, _) in enumerate(TASKS, start=1)}  # fmt: skip
    iso = datetime.fromtimestamp(start, UTC).isoformat()
    end = WorkflowCompleted(**common, state="Succeeded", mode=Mode.ORCHESTRATION,
                            output={"n": n + 5}, started_at=iso, ended_at=iso, tasks=summary)  # fmt: skip
    add(topics.WORKFLOWS, end, f"{workflow_id}:finished")
    return out


def workload(count: int) -> list[tuple[str, CloudEvent]]:
    """`count` workflows, interleaved as concurrent workflows are on the wire."""
    per = [chain_events(f"bench-{i:06d}", i) for i in range(count)]
    return [per[w][e] for e in range(EVENTS_PER_WORKFLOW) for w in range(count)]


@contextlib.asynccontextmanager
async def database_of(kind: str, server: str | None, tmp: Path) -> AsyncIterator[Database]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'history-{time.monotonic_ns()}.db'}"
    else:
        assert server is not None
        url = await create_database(server, f"bench{time.monotonic_ns()}")
    database = Database(url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


async def stage_database(
    database: Database, events: list[CloudEvent], batch: int
) -> dict[str, Any]:
    batches = []
    for start in range(0, len(events), batch):
        rows = Batch()
        for event in events[start : start + batch]:
            rows.add(event)
        batches.append(rows)
    began = time.perf_counter()
    for rows in batches:
        await database.write(rows)
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "rows": sum(len(b) for b in batches), "batches": len(batches)}


async def stage_kafka(
    database: Database, events: list[tuple[str, CloudEvent]], count: int
) -> dict[str, Any]:
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        settings = Settings(bootstrap_servers=bootstrap)
        catalog = Catalog([CHAIN])
        await create_topics(
            bootstrap,
            [topics.WORKFLOWS, topics.DEAD_LETTER, *topics.task_topics(catalog.task_types)],
            settings,
        )
        producer = make_producer(bootstrap)
        await producer.start()
        try:
            acks = []
            for topic, event in events:
                record = encode(event)
                acks.append(await producer.send(topic, value=record.value, key=record.key,
                                                headers=record.headers))  # fmt: skip
            await asyncio.gather(*acks)
        finally:
            await producer.stop()
        recorder = Recorder(catalog, bootstrap, settings, database)
        routed = 0
        route = recorder.route

        def counting(partition: int, event: CloudEvent, now: float) -> None:
            nonlocal routed
            routed += 1
            route(partition, event, now)

        recorder.route = counting  # type: ignore[method-assign]
        flush = recorder.flush
        all_written = asyncio.Event()

        async def flushing() -> None:
            await flush()
            if routed >= len(events):
                all_written.set()

        recorder.flush = flushing  # type: ignore[method-assign]
        running = asyncio.create_task(recorder.run())
        await recorder.ready.wait()
        began = time.perf_counter()
        await asyncio.wait_for(all_written.wait(), 600)
        elapsed = time.perf_counter() - began
        recorder.stop()
        await running
    return {"seconds": elapsed, "rows": recorder.rows, "gaps": recorder.loop.reader.gaps}


@contextlib.contextmanager
def maybe_postgres(wanted: bool) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    reason = unavailable()
    if reason is not None:
        print(f"postgresql: skipped ({reason})", file=sys.stderr)
        yield None
        return
    with postgres_server(durable=True) as url:
        yield url


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    stages = args.stages.split(",")
    kinds = args.databases.split(",")
    wire = workload(args.workflows)
    results = []
    with tempfile.TemporaryDirectory() as tmp, maybe_postgres("postgresql" in kinds) as server:
        for kind in kinds:
            if kind == "postgresql" and server is None:
                continue
            for stage in stages:
                async with database_of(kind, server, Path(tmp)) as database:
                    if stage == "database":
                        measured = await stage_database(
                            database, [event for _, event in wire], args.batch
                        )
                    else:
                        measured = await stage_kafka(database, wire, args.workflows)
                seconds = measured.pop("seconds")
                results.append(
                    {
                        "database": kind,
                        "stage": stage,
                        "workflows": args.workflows,
                        "events/s": round(len(wire) / seconds),
                        "rows/s": round(measured["rows"] / seconds),
                        "workflows/s": round(args.workflows / seconds),
                        "seconds": round(seconds, 2),
                        **measured,
                    }
                )
                print(table(results[-1:], list(results[-1])), flush=True)
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stages", default="database,kafka", help="comma-separated: %(default)s")
    p.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: %(default)s")
    p.add_argument("--workflows", type=int, default=3_000)
    p.add_argument("--batch", type=int, default=500, help="events per batch (database stage)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "history.json")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    measured = asyncio.run(main(arguments))
    print()
    print(table(measured, ["database", "stage", "events/s", "rows/s", "workflows/s", "seconds"]))
    arguments.out.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "workflows": arguments.workflows,
                "batch": arguments.batch,
                "results": measured,
            },
            indent=2,
        )
        + "\n"
    )
