"""The `podium` command line: thin commands over the runtimes.

Logs go to stderr, results to stdout. Exit codes: 0 success, 1 a workflow that
ended otherwise than Succeeded (or a runtime failure), 2 a usage or validation
error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer

from podium.broker import EmbeddedBroker, bootstrap_or_embedded
from podium.events import Mode
from podium.runtime.settings import Settings, kafka_connection

if TYPE_CHECKING:  # the command bodies import what they run, so `--help` stays quick
    from podium.conductor.conductor import Conductor

app = typer.Typer(
    name="podium",
    help="Event-driven workflows over Kafka: orchestration or choreography, one definition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Event-driven workflows over Kafka: orchestration or choreography, one definition."""


@app.command()
def broker(
    port: int = typer.Option(9092, "--port", min=1, max=65535, help="Loopback port to listen on."),
    kind: str = typer.Option(
        "tansu",
        "--kind",
        help="tansu: the embedded broker, memory storage. kafka: Apache Kafka from its jars "
        "(java >= 17; mvn fetches the jars the first time).",
    ),
) -> None:
    """Run a broker in the foreground until interrupted: tansu (embedded) or Apache Kafka."""
    if kind == "kafka":
        _apache_kafka_broker(port)
        return
    if kind != "tansu":
        raise _fail(f"--kind must be tansu or kafka, not {kind!r}")
    embedded = EmbeddedBroker(port)
    embedded.start()
    print(embedded.bootstrap_servers, flush=True)
    print(
        f"podium: embedded broker listening on {embedded.bootstrap_servers}; Ctrl-C stops it",
        file=sys.stderr,
    )
    print("podium: ready", file=sys.stderr, flush=True)

    asked: list[int] = []

    def stop(signum: int, frame: object) -> None:
        asked.append(signum)
        embedded.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = embedded.wait()
    embedded.stop()
    if not asked:  # the broker died on its own: whoever relied on it must hear of it
        raise _fail(f"the embedded broker exited unexpectedly (code {code})", 1)


def _apache_kafka_broker(port: int) -> None:
    """`podium broker --kind kafka`: one KRaft node, its log dir in a temporary folder."""
    from podium import apache_kafka

    try:
        libs = apache_kafka.libs_dir()
        if not apache_kafka.fetched(libs):
            version = apache_kafka.kafka_version()
            print(f"podium: fetching Apache Kafka {version} into {libs} (once)", file=sys.stderr)
            apache_kafka.fetch()
    except apache_kafka.ApacheKafkaError as exc:
        raise _fail(str(exc), 1) from None

    kafka = apache_kafka.ApacheKafka(port=port)
    asked: list[int] = []

    def stop(signum: int, frame: object) -> None:
        asked.append(signum)
        kafka.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        kafka.start()
    except apache_kafka.ApacheKafkaError as exc:
        kafka.stop()
        if asked:  # interrupted while starting
            return
        raise _fail(str(exc), 1) from None
    if asked:  # a signal that came before the JVM did
        kafka.stop()
        return
    print(kafka.bootstrap_servers, flush=True)
    print(
        f"podium: Apache Kafka {apache_kafka.kafka_version()} listening on "
        f"{kafka.bootstrap_servers} (KRaft, data in {kafka.data_dir}); Ctrl-C stops it",
        file=sys.stderr,
    )
    print("podium: ready", file=sys.stderr, flush=True)
    code = kafka.wait()
    tail = kafka.nodes[0].log_tail()
    kafka.stop()
    if not asked:  # the broker died on its own: whoever relied on it must hear of it
        raise _fail(f"Apache Kafka exited unexpectedly (code {code}): {tail}", 1)


def _run(coroutine: Any) -> Any:
    """asyncio.run, with Kafka connection failures as a message instead of a traceback."""
    from aiokafka.errors import KafkaConnectionError

    try:
        return asyncio.run(coroutine)
    except KafkaConnectionError as exc:
        raise _fail(f"cannot reach Kafka: {exc}", 1) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    print(f"podium: {message}", file=sys.stderr)
    return typer.Exit(code)


def _settings(
    bootstrap_servers: str | None,
    definitions: Path | None = None,
    mode: str | None = None,
    health_port: int | None = None,
) -> Settings:
    try:
        settings = Settings()
        kafka_connection()  # checked at start: a message, not a traceback from a client
    except ValueError as exc:
        raise _fail(f"invalid PODIUM_* setting: {exc}") from None
    updates: dict[str, Any] = {}
    if mode is not None:
        if mode not in set(Mode):
            raise _fail(f"--mode must be orchestration or choreography, not {mode!r}")
        updates["mode"] = Mode(mode)
    if bootstrap_servers:
        updates["bootstrap_servers"] = bootstrap_servers
    if definitions:
        updates["definitions"] = definitions
    if health_port is not None:
        updates["health_port"] = health_port
    return settings.model_copy(update=updates)


def _json_input(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"--input is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _fail("--input must be a JSON object")
    return value


def _catalog(settings: Settings) -> Any:
    from podium.workflow.catalog import Catalog
    from podium.workflow.loader import load_definitions
    from podium.workflow.validation import DefinitionError

    if settings.definitions is None:
        raise _fail("no definitions: pass --definitions PATH or set PODIUM_DEFINITIONS")
    try:
        return Catalog(load_definitions(settings.definitions))
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise _fail(f"{settings.definitions}: invalid definitions") from None
    except OSError as exc:
        raise _fail(f"cannot read definitions: {exc}") from None


BOOTSTRAP = typer.Option(
    None, "--bootstrap-servers", help="Kafka bootstrap servers (PODIUM_BOOTSTRAP_SERVERS)."
)
DEFINITIONS = typer.Option(
    None, "--definitions", help="A definition file or a directory of them (PODIUM_DEFINITIONS)."
)
HISTORY_URL = typer.Option(
    None,
    "--history-url",
    help="The history database, a SQLAlchemy URL (PODIUM_HISTORY_URL; default: "
    "sqlite:///./podium-history.db).",
)
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
METRICS_PORT = typer.Option(
    None,
    "--metrics-port",
    min=0,
    max=65535,
    help="Serve Prometheus metrics at /metrics on this port (PODIUM_METRICS_PORT).",
)
HEALTH_PORT = typer.Option(
    None,
    "--health-port",
    min=0,
    max=65535,
    help="Serve readiness at /ready and liveness at /live on this port (PODIUM_HEALTH_PORT).",
)


def _observe(settings: Settings, metrics_port: int | None, role: str) -> None:
    """A long-running role's metrics endpoint, and its traces when OTEL_* name an exporter."""
    from podium import metrics

    _traces(role)
    port = settings.metrics_port if metrics_port is None else metrics_port
    if port is not None:
        try:
            metrics.serve(port, settings.metrics_host)
        except OSError as exc:
            raise _fail(
                f"cannot serve metrics on {settings.metrics_host}:{port}: {exc}", 1
            ) from None


def _traces(role: str) -> None:
    from podium import tracing

    try:
        tracing.configure_from_env(f"podium-{role}")
    except tracing.TracingError as exc:
        raise _fail(str(exc)) from None


def _database(url: str | None) -> Any:
    """The history database named by the flag, else PODIUM_HISTORY_URL, else the default."""
    from podium.history.database import Database, HistoryError, default_url

    try:
        settings = Settings()
    except ValueError as exc:
        raise _fail(f"invalid PODIUM_* setting: {exc}") from None
    try:
        return Database(url or settings.history_url or default_url())
    except HistoryError as exc:
        raise _fail(str(exc)) from None


def _read(coroutine: Any) -> Any:
    """asyncio.run for a history read, with database errors as one line."""
    from podium.history.database import HistoryError

    try:
        return asyncio.run(coroutine)
    except HistoryError as exc:
        raise _fail(f"history: {exc}", 1) from None


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Definition files (YAML or JSON)."),
) -> None:
    """Check workflow definitions; report every problem, each naming file and task."""
    from podium.workflow.loader import summary, validate_files

    definitions, problems = validate_files(files)
    for problem in problems:
        print(problem, file=sys.stderr)
    for path, definition in definitions.items():
        print(summary(path, definition))
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(2)


@app.command()
def asyncapi(
    definitions: Path | None = DEFINITIONS,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML."),
    partitions: int | None = typer.Option(
        None, "--partitions", min=1, help="Partitions per topic (PODIUM_PARTITIONS)."
    ),
) -> None:
    """Write the AsyncAPI 3.0 document of a deployment: topics, who reads and writes them."""
    from podium.asyncapi import document

    settings = _settings(None, definitions)
    doc = document(_catalog(settings), partitions or settings.partitions)
    _write_document(doc, output, as_json)


@app.command()
def schemas(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
) -> None:
    """Write the JSON Schemas of every event payload (the CloudEvents' data), by type."""
    from podium.asyncapi import json_schemas

    _write_document(json_schemas(), output, as_json=True)


def _write_document(doc: dict[str, Any], output: Path | None, as_json: bool) -> None:
    if as_json:
        text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        import yaml

        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


@app.command()
def service(
    targets: list[str] = typer.Argument(..., metavar="MODULE:OBJ...", help="Task services to run."),
    mode: str | None = typer.Option(
        None, "--mode", help="orchestration or choreography (PODIUM_MODE)."
    ),
    definitions: Path | None = DEFINITIONS,
    bootstrap_servers: str | None = BOOTSTRAP,
    concurrency: int | None = typer.Option(None, min=1, help="Handlers running at once."),
    metrics_port: int | None = METRICS_PORT,
    health_port: int | None = HEALTH_PORT,
) -> None:
    """Run task services: handle commands (orchestration) or react to events (choreography)."""
    from podium.loading import LoadError, load_services

    configure_logging()
    settings = _settings(bootstrap_servers, definitions, mode, health_port)
    if concurrency:
        settings = settings.model_copy(update={"concurrency": concurrency})
    try:
        loaded = load_services(targets)
    except LoadError as exc:
        raise _fail(str(exc)) from None
    _observe(settings, metrics_port, "+".join(s.name for s in loaded))
    if settings.mode == Mode.CHOREOGRAPHY:
        from podium.services.participant import Participant

        catalog = _catalog(settings)
        with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
            _run(
                _serve(
                    lambda: [Participant(s, catalog, bootstrap, settings) for s in loaded], settings
                )
            )
        return
    from podium.services.worker import Worker

    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        _run(_serve(lambda: [Worker(s, bootstrap, settings) for s in loaded], settings))


@app.command()
def tracker(
    definitions: Path | None = DEFINITIONS,
    bootstrap_servers: str | None = BOOTSTRAP,
    metrics_port: int | None = METRICS_PORT,
    health_port: int | None = HEALTH_PORT,
) -> None:
    """Run the tracker: watch workflows of both modes, announce choreographed ones' ends."""
    from podium.conductor.conductor import Tracker

    _run_state_machine(Tracker, definitions, bootstrap_servers, metrics_port, health_port)


@app.command()
def conductor(
    definitions: Path | None = DEFINITIONS,
    bootstrap_servers: str | None = BOOTSTRAP,
    metrics_port: int | None = METRICS_PORT,
    health_port: int | None = HEALTH_PORT,
) -> None:
    """Run a conductor: drive orchestrated workflows from triggers and outcomes."""
    from podium.conductor.conductor import Conductor

    _run_state_machine(Conductor, definitions, bootstrap_servers, metrics_port, health_port)


triggers_app = typer.Typer(
    help="The trigger gateway: schedules and event bindings start workflows.",
    no_args_is_help=False,
)
app.add_typer(triggers_app, name="triggers")


@triggers_app.callback(invoke_without_command=True)
def triggers(
    ctx: typer.Context,
    definitions: Path | None = DEFINITIONS,
    mode: str | None = typer.Option(
        None, "--mode", help="Mode of the workflows it starts (PODIUM_MODE)."
    ),
    bootstrap_servers: str | None = BOOTSTRAP,
    metrics_port: int | None = METRICS_PORT,
    health_port: int | None = HEALTH_PORT,
) -> None:
    """Run the trigger gateway for the definitions' schedules and event bindings."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = (definitions, mode)
        return
    from podium.triggers.gateway import Gateway, has_triggers

    configure_logging()
    settings = _settings(bootstrap_servers, definitions, mode, health_port)
    catalog = _catalog(settings)
    if not has_triggers(catalog):
        raise _fail(f"{settings.definitions}: no definition has triggers")
    _observe(settings, metrics_port, "triggers")
    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        _run(_serve(lambda: [Gateway(catalog, bootstrap, settings)], settings))


@triggers_app.command(name="list")
def triggers_list(
    ctx: typer.Context,
    definitions: Path | None = DEFINITIONS,
    count: int = typer.Option(3, "--next", min=1, max=100, help="Fire times per schedule."),
    as_json: bool = AS_JSON,
    metrics_urls: list[str] = typer.Option(
        [],
        "--metrics-url",
        help="A running gateway's /metrics (repeatable): each binding's counts, summed.",
    ),
) -> None:
    """Every schedule with its next fire times, every event binding with its topic (and,
    with --metrics-url, its records matched, filtered out and dead-lettered)."""
    import time

    from podium.triggers.listing import binding_counts, listing, print_listing

    parent = ctx.obj or (None, None)
    settings = _settings(None, definitions or parent[0])
    counts = None
    if metrics_urls:
        try:
            counts = binding_counts(metrics_urls)
        except (OSError, ValueError) as exc:
            print(f"podium: binding counts unknown: cannot read metrics: {exc}", file=sys.stderr)
    entries = listing(_catalog(settings), time.time(), count, counts)
    if as_json:
        sys.stdout.write(orjson.dumps(entries).decode() + "\n")
        return
    print_listing(entries)


topics_app = typer.Typer(help="Podium's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command(name="create")
def topics_create(
    definitions: Path | None = DEFINITIONS,
    services: list[str] = typer.Option(
        [], "--service", help="A choreography service's name: its changelog too (repeatable)."
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", min=1, max=1024, help="Partitions of every topic (PODIUM_PARTITIONS)."
    ),
    replication_factor: int | None = typer.Option(
        None,
        "--replication-factor",
        min=1,
        max=16,
        help="Replicas of every topic (PODIUM_REPLICATION_FACTOR).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the topics, create none."),
    bootstrap_servers: str | None = BOOTSTRAP,
) -> None:
    """Create every topic of a deployment, explicitly: idempotent (existing topics are left
    as they are), one partition count for all (co-partitioning), changelogs compacted."""
    from podium.client import deployment_topics
    from podium.conductor.completion import published_to
    from podium.events import topics
    from podium.runtime.kafka import create_topics

    configure_logging()
    settings = _settings(bootstrap_servers, definitions)
    updates = {"partitions": partitions, "replication_factor": replication_factor}
    settings = settings.model_copy(update={k: v for k, v in updates.items() if v is not None})
    catalog = _catalog(settings)
    try:
        names = deployment_topics(catalog.task_types, published_to(catalog), services)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    for name in names:
        policy = "compact" if topics.is_changelog(name) else "delete"
        print(f"{name}\t{settings.partitions}\t{settings.replication_factor}\t{policy}")
    if dry_run:
        return
    if not settings.bootstrap_servers:
        raise _fail(
            "no bootstrap servers: set PODIUM_BOOTSTRAP_SERVERS or pass --bootstrap-servers"
        )
    _run(create_topics(settings.bootstrap_servers, names, settings))
    print(f"podium: {len(names)} topics ready on {settings.bootstrap_servers}", file=sys.stderr)


@app.command(name="history-store")
def history_store(
    definitions: Path | None = DEFINITIONS,
    bootstrap_servers: str | None = BOOTSTRAP,
    history_url: str | None = HISTORY_URL,
    metrics_port: int | None = METRICS_PORT,
    health_port: int | None = HEALTH_PORT,
) -> None:
    """Run the history store: record every workflow, attempt and transition of both modes."""
    from podium.history.database import HistoryError
    from podium.history.recorder import Recorder

    configure_logging()
    settings = _settings(bootstrap_servers, definitions, health_port=health_port)
    catalog = _catalog(settings)
    database = _database(history_url)
    _observe(settings, metrics_port, "history-store")
    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        try:
            _run(_serve(lambda: [Recorder(catalog, bootstrap, settings, database)], settings))
        except HistoryError as exc:
            raise _fail(f"history: {exc}", 1) from None


@app.command(name="list")
def list_workflows(
    state: str | None = typer.Option(None, "--state", help="Only workflows in this state."),
    name: str | None = typer.Option(None, "--name", help="Only workflows of this definition."),
    mode: str | None = typer.Option(None, "--mode", help="orchestration or choreography."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = AS_JSON,
    history_url: str | None = HISTORY_URL,
) -> None:
    """List recorded workflows, newest first."""
    from podium import show
    from podium.workflow.states import WorkflowStatus

    if mode is not None and mode not in set(Mode):
        raise _fail(f"--mode must be orchestration or choreography, not {mode!r}")
    if state is not None and state not in set(WorkflowStatus):
        raise _fail(f"--state must be one of {', '.join(WorkflowStatus)}, not {state!r}")
    database = _database(history_url)
    items = _read(
        _closing(database, show.workflows(database, state=state, name=name, mode=mode, limit=limit))
    )
    if as_json:
        sys.stdout.write(orjson.dumps(items).decode() + "\n")
        return
    if not items:
        from podium.history.database import describe

        what = "matches" if state or name or mode else "is recorded"
        print(f"podium: no workflow {what} in {describe(database.url)}", file=sys.stderr)
        return
    show.print_workflows(items)


@app.command()
def status(
    workflow_id: str = typer.Argument(..., metavar="ID", help="Workflow id."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the result object, as `run --json` did."
    ),
    history_url: str | None = HISTORY_URL,
) -> None:
    """A recorded workflow's state: an ended one's result, exactly as its run printed it."""
    from podium import show

    database = _database(history_url)
    result = _read(_closing(database, show.status(database, workflow_id)))
    if result is None:
        raise _unknown(workflow_id, database)
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    show.print_status(result)


@app.command()
def history(
    workflow_id: str = typer.Argument(..., metavar="ID", help="Workflow id."),
    as_json: bool = AS_JSON,
    history_url: str | None = HISTORY_URL,
) -> None:
    """A recorded workflow's transitions in order, with their times and durations."""
    from podium import show

    database = _database(history_url)
    entries = _read(_closing(database, show.history(database, workflow_id)))
    if entries is None:
        raise _unknown(workflow_id, database)
    if as_json:
        sys.stdout.write(orjson.dumps(entries).decode() + "\n")
        return
    show.print_history(workflow_id, entries)


@app.command()
def cancel(
    workflow_id: str = typer.Argument(..., metavar="ID", help="Workflow id."),
    reason: str = typer.Option("", "--reason", help="Said in the workflow's error."),
    wait: bool = typer.Option(False, "--wait", help="Follow the workflow to its end."),
    timeout: float | None = typer.Option(None, "--timeout", min=0, help="Seconds to wait."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    bootstrap_servers: str | None = BOOTSTRAP,
    history_url: str | None = HISTORY_URL,
) -> None:
    """Cancel a recorded workflow: no new attempt; a saga undoes what succeeded; it ends Cancelled."""
    from podium.client import Client, prepare_topics, result_json
    from podium.workflow.states import TERMINAL

    configure_logging()
    settings = _settings(bootstrap_servers)
    database = _database(history_url)
    workflow = _read(_closing(database, database.workflow(workflow_id)))
    if workflow is None:
        raise _unknown(workflow_id, database)
    if workflow["state"] in TERMINAL:
        raise _fail(f"workflow {workflow_id} has ended: {workflow['state']}", 1)
    if not settings.bootstrap_servers:
        raise _fail(
            "no bootstrap servers: set PODIUM_BOOTSTRAP_SERVERS or pass --bootstrap-servers"
        )

    async def go(bootstrap: str) -> int:
        await prepare_topics(bootstrap, settings, set())
        async with Client(bootstrap, settings) as client:
            ended = client.expect(workflow_id)
            await client.cancel(workflow_id, workflow["name"], workflow["version"], reason=reason)
            if not wait:
                print(f"podium: cancel of {workflow_id} requested", file=sys.stderr)
                return 0
            try:
                result = await asyncio.wait_for(ended, timeout)
            except TimeoutError:
                raise _fail(f"workflow {workflow_id} did not end within {timeout}s", 1) from None
        _print_result(result_json(workflow_id, result), as_json)
        return 0 if result.state == "Cancelled" else 1

    raise typer.Exit(_run(go(settings.bootstrap_servers)))


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    definitions: Path | None = typer.Option(
        None,
        "--definitions",
        help="Definitions to trigger (PODIUM_DEFINITIONS); reads need none.",
    ),
    bootstrap_servers: str | None = typer.Option(
        None,
        "--bootstrap-servers",
        help="Kafka to trigger and cancel through (PODIUM_BOOTSTRAP_SERVERS); reads need none.",
    ),
    history_url: str | None = HISTORY_URL,
    health_port: int | None = HEALTH_PORT,
) -> None:
    """Serve the HTTP API and the dashboard: what is recorded; trigger and cancel."""
    from podium.api import create_app
    from podium.api.server import Server, ready
    from podium.history.database import describe

    configure_logging()
    settings = _settings(bootstrap_servers, definitions, health_port=health_port)
    catalog = _catalog(settings) if settings.definitions is not None else None
    database = _database(history_url)
    token = os.environ.get("PODIUM_API_TOKEN") or None
    app = create_app(database, settings, catalog=catalog, token=token)
    guarded = ", a bearer token to trigger and cancel" if token else ""
    url = f"http://{host}:{{port}} (history {describe(database.url)}{guarded})"
    health = (
        (settings.health_host, settings.health_port) if settings.health_port is not None else None
    )
    server = Server(app, host, port, ready(url), health=health)
    server.run()
    if not server.started:
        raise _fail(f"cannot serve on {host}:{port}", 1)


async def _closing(database: Any, coroutine: Any) -> Any:
    try:
        return await coroutine
    finally:
        await database.close()


def _unknown(workflow_id: str, database: Any) -> typer.Exit:
    from podium.history.database import describe

    return _fail(f"no workflow {workflow_id!r} in the history at {describe(database.url)}", 1)


def _run_state_machine(
    kind: type[Conductor],
    definitions: Path | None,
    bootstrap_servers: str | None,
    metrics_port: int | None,
    health_port: int | None,
) -> None:
    """The conductor and the tracker: one process hosting the state machine."""
    configure_logging()
    settings = _settings(bootstrap_servers, definitions, health_port=health_port)
    catalog = _catalog(settings)
    _observe(settings, metrics_port, kind.name)
    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        _run(_serve(lambda: [kind(catalog, bootstrap, settings)], settings))


async def _health_server(status: Any, settings: Settings) -> asyncio.Server | None:
    from podium import health

    if settings.health_port is None:
        return None
    try:
        return await health.serve(status, settings.health_port, settings.health_host)
    except OSError as exc:
        where = f"{settings.health_host}:{settings.health_port}"
        raise _fail(f"cannot serve health on {where}: {exc}", 1) from None


async def _serve(build: Any, settings: Settings) -> None:
    """Run components until SIGTERM/SIGINT, then stop them cleanly: each drains (what
    runs ends, what it caused is acknowledged, offsets commit, it leaves its group)
    within `drain_timeout_s`; past that, or at a second signal, what is left is
    abandoned (at-least-once: it runs again elsewhere) and the process exits 1."""
    from podium import health
    from podium.runtime.kafka import learn_broker

    if settings.bootstrap_servers:  # else the embedded broker, tansu, started here
        await learn_broker(settings.bootstrap_servers)
    parts = build()
    loop = asyncio.get_running_loop()
    status = health.Health(lambda: all(part.ready.is_set() for part in parts))
    server = await _health_server(status, settings)
    tasks = [asyncio.create_task(part.run()) for part in parts]
    abandoned: list[str] = []

    def abandon(why: str) -> None:
        abandoned.append(why)
        for task in tasks:
            task.cancel()

    def stop() -> None:
        if status.draining:
            abandon("a second signal")
            return
        status.draining = True
        for part in parts:
            part.stop()
        loop.call_later(settings.drain_timeout_s, abandon, f"{settings.drain_timeout_s:g}s")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)

    async def announce() -> None:
        await asyncio.gather(*(part.ready.wait() for part in parts))
        print("podium: ready", file=sys.stderr, flush=True)

    announcer = asyncio.create_task(announce())
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        if not abandoned:
            raise
        raise _fail(f"stopped without draining ({abandoned[0]})", 1) from None
    finally:
        announcer.cancel()
        if server is not None:
            server.close()


@app.command()
def up(
    compose_file: Path = typer.Argument(
        Path("docker-compose.yml"), metavar="[COMPOSE_FILE]", help="The compose file."
    ),
    profiles: list[str] = typer.Option([], "--profile", help="Also run this profile's services."),
    broker_kind: str = typer.Option(
        "tansu", "--broker", help="What stands in for Kafka: tansu (embedded) or apache-kafka."
    ),
    project_directory: Path | None = typer.Option(
        None, "--project-directory", help="Where the services run (default: the file's folder)."
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Where PostgreSQL's data or SQLite's file goes (PROJECT/.podium-up).",
    ),
    database: str = typer.Option(
        "auto",
        "--database",
        help="What stands in for PostgreSQL: a local server from its binaries, or SQLite "
        "(auto: the server when its binaries are here).",
    ),
) -> None:
    """Run a compose file's Podium services as local processes, without Docker: Kafka by
    the embedded broker, PostgreSQL by a local server (or SQLite), `ports:` honoured;
    Ctrl-C stops them all."""
    from podium import postgres
    from podium import up as compose

    if broker_kind not in ("tansu", "apache-kafka"):
        raise _fail(f"--broker must be tansu or apache-kafka, not {broker_kind!r}")
    if database not in ("auto", "postgres", "sqlite"):
        raise _fail(f"--database must be auto, postgres or sqlite, not {database!r}")
    sqlite_because = "--database sqlite" if database == "sqlite" else postgres.unavailable()
    if database == "postgres" and sqlite_because is not None:
        raise _fail(f"--database postgres: {sqlite_because}")
    project = (project_directory or compose_file.resolve().parent).resolve()
    data = (data_dir or project / ".podium-up").resolve()
    data.mkdir(parents=True, exist_ok=True)
    try:
        plan = compose.plan(
            compose.load(compose_file, profiles),
            data,
            sqlite_because=sqlite_because,
            broker_name="Apache Kafka" if broker_kind == "apache-kafka" else "the embedded broker",
        )
    except compose.UpError as exc:
        raise _fail(str(exc)) from None
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    runner = compose.Up(plan, project, sys.stdout, colour)
    for name in plan.skipped:
        print(f"podium up: {name} needs Docker: not run", file=sys.stderr)
    signal.signal(signal.SIGTERM, runner.signal)
    signal.signal(signal.SIGINT, runner.signal)
    try:
        with (
            compose.broker(broker_kind.replace("apache-kafka", "kafka"), plan.broker_port),
            compose.databases(plan),
        ):
            for name, instead in plan.replaced.items():
                print(f"podium up: {name} replaced by {instead}", file=sys.stderr, flush=True)
            code = runner.run()
    except (compose.UpError, OSError, RuntimeError) as exc:
        raise _fail(str(exc), 1) from None
    raise typer.Exit(code)


@app.command()
def probe(
    what: str = typer.Argument(..., metavar="ready|live", help="Which check to ask for."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="The role's health port (PODIUM_HEALTH_PORT)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="The role's address."),
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, help="Seconds to wait."),
) -> None:
    """Ask a running role whether it is ready or live: exit 0 if so, 1 if not (healthchecks)."""
    from podium import health

    if what not in ("ready", "live"):
        raise _fail(f"probe ready or live, not {what!r}")
    if port is None:
        port = _settings(None).health_port
    if port is None:
        raise _fail("no health port: pass --port or set PODIUM_HEALTH_PORT")
    healthy, said = health.probe(what, port, host, timeout)
    print(f"podium: {said}", file=sys.stderr)
    raise typer.Exit(0 if healthy else 1)


@app.command()
def trigger(
    name: str = typer.Argument(..., metavar="NAME", help="Workflow name."),
    input: str = typer.Option("{}", "--input", help="Workflow input, a JSON object."),
    version: int | None = typer.Option(None, "--version", help="Definition version (latest)."),
    workflow_id: str | None = typer.Option(None, "--id", help="Workflow id (default: random)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the workflow to its end."),
    timeout: float | None = typer.Option(None, "--timeout", min=0, help="Seconds to wait."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    mode: str | None = typer.Option(
        None, "--mode", help="orchestration or choreography (PODIUM_MODE)."
    ),
    definitions: Path | None = DEFINITIONS,
    bootstrap_servers: str | None = BOOTSTRAP,
) -> None:
    """Publish a trigger event (input validated first) and print the workflow id."""
    from podium.client import Client, InputRejected, prepare_topics, result_json
    from podium.workflow.catalog import UnknownWorkflow

    configure_logging()
    settings = _settings(bootstrap_servers, definitions, mode)
    catalog = _catalog(settings)
    payload = _json_input(input)
    try:
        definition = catalog.get(name, version)
    except UnknownWorkflow as exc:
        raise _fail(str(exc)) from None
    problems = definition.input_errors(payload)
    if problems:
        raise _fail(f"input rejected for {name} v{definition.version}: {'; '.join(problems)}")

    async def go(bootstrap: str) -> int:
        await prepare_topics(bootstrap, settings, catalog.task_types)
        async with Client(bootstrap, settings) as client:
            try:
                wid = await client.trigger(
                    definition, payload, workflow_id=workflow_id, mode=settings.mode
                )
            except InputRejected as exc:
                raise _fail(f"input rejected: {exc}") from None
            if not wait:
                print(wid)
                return 0
            if not as_json:
                print(wid, flush=True)
            try:
                ended = await asyncio.wait_for(client.expect(wid), timeout)
            except TimeoutError:
                raise _fail(f"workflow {wid} did not end within {timeout}s", 1) from None
        _print_result(result_json(wid, ended), as_json)
        return 0 if ended.state == "Succeeded" else 1

    if not settings.bootstrap_servers:
        # an embedded broker started for one trigger would vanish with it, and the trigger too
        raise _fail(
            "no bootstrap servers: set PODIUM_BOOTSTRAP_SERVERS or pass --bootstrap-servers "
            "(`podium broker` prints the address of an embedded one)"
        )
    code = _run(go(settings.bootstrap_servers))
    raise typer.Exit(code)


@app.command()
def run(
    definition_file: Path = typer.Argument(..., metavar="DEFINITION", help="A definition file."),
    services: list[str] = typer.Option(..., "--services", help="MODULE:OBJ task services."),
    input: str = typer.Option("{}", "--input", help="Workflow input, a JSON object."),
    mode: str | None = typer.Option(
        None, "--mode", help="orchestration or choreography (PODIUM_MODE)."
    ),
    workflow_id: str | None = typer.Option(None, "--id", help="Workflow id (default: random)."),
    timeout: float | None = typer.Option(None, "--timeout", min=0, help="Seconds to wait."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    bootstrap_servers: str | None = BOOTSTRAP,
    history_url: str | None = HISTORY_URL,
) -> None:
    """One shot: start the services (and conductor or tracker), run one workflow, stop all.

    A history store records the run; the command returns once the workflow's end is in it.
    """
    from podium.client import InputRejected, result_json
    from podium.history.database import HistoryError
    from podium.live import LiveView
    from podium.loading import LoadError, load_services
    from podium.oneshot import run_once
    from podium.workflow.loader import load_definition
    from podium.workflow.validation import DefinitionError

    configure_logging()
    settings = _settings(bootstrap_servers, mode=mode)
    try:
        definition = load_definition(definition_file)
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise _fail(f"{definition_file}: invalid definition") from None
    except OSError as exc:
        raise _fail(f"cannot read {definition_file}: {exc}") from None
    payload = _json_input(input)
    problems = definition.input_errors(payload)
    if problems:
        raise _fail(f"input rejected for {definition.name}: {'; '.join(problems)}")
    try:
        loaded = load_services(services)
    except LoadError as exc:
        raise _fail(str(exc)) from None
    database = _database(history_url)
    _traces("run")

    view = None if as_json else LiveView(definition)
    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        try:
            with view if view is not None else contextlib.nullcontext():
                wid, ended = _run(
                    run_once(
                        definition,
                        loaded,
                        payload,
                        bootstrap_servers=bootstrap,
                        settings=settings,
                        workflow_id=workflow_id,
                        timeout=timeout,
                        mode=settings.mode,
                        on_state=view.update if view is not None else None,
                        history=database,
                    )
                )
        except (LookupError, InputRejected) as exc:
            raise _fail(str(exc)) from None
        except HistoryError as exc:
            raise _fail(f"history: {exc}", 1) from None
        except TimeoutError:
            raise _fail(f"the workflow did not end within {timeout}s", 1) from None
    _print_result(result_json(wid, ended), as_json)
    raise typer.Exit(0 if ended.state == "Succeeded" else 1)


@app.command()
def compare(
    definition_file: Path = typer.Argument(..., metavar="DEFINITION", help="A definition file."),
    services: list[str] = typer.Option(..., "--services", help="MODULE:OBJ task services."),
    input: str | None = typer.Option(None, "--input", help="Every run's input, a JSON object."),
    inputs: Path | None = typer.Option(None, "--inputs", help="JSON lines: run i gets line i."),
    runs: int = typer.Option(100, "--runs", min=1, help="Workflows measured per mode."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Workflows in flight."),
    fail_rate: float = typer.Option(
        0.0, "--fail-rate", min=0.0, max=1.0, help="Fraction of attempts failed (retryably)."
    ),
    kill: list[str] = typer.Option(
        [],
        "--kill",
        help="SERVICE@SECONDS, or conductor@SECONDS (the tracker in choreography): kill -9 it "
        "that far into each mode's runs and restart it; repeatable. Needs a broker.",
    ),
    in_process: bool = typer.Option(
        False,
        "--in-process",
        help="Run both deployments in this process (always on memory://); by default, on a "
        "broker, each service and conductor or tracker runs as a process of its own.",
    ),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the figures as JSON here."),
    bootstrap_servers: str | None = BOOTSTRAP,
) -> None:
    """Run DEFINITION in both modes under the same load and failures; compare the figures.

    Exit 0 when every run of both modes ended, 1 when one was lost, 2 on a usage error.
    """
    from podium.compare.child import Sources
    from podium.compare.command import UsageError, read_inputs
    from podium.compare.command import compare as run_compare
    from podium.compare.recovery import KillError, parse_kills
    from podium.compare.runner import Options
    from podium.loading import LoadError, load_services
    from podium.runtime.memory import is_memory
    from podium.workflow.catalog import Catalog
    from podium.workflow.loader import load_definition
    from podium.workflow.validation import DefinitionError

    settings = _settings(bootstrap_servers)
    if kill and is_memory(settings.bootstrap_servers or ""):
        raise _fail("--kill needs a broker: what it kills runs as a process of its own")
    try:
        definition = load_definition(definition_file)
        payloads, note = read_inputs(definition, input, inputs)
        loaded = load_services(services)
        kills = parse_kills(kill, [s.name for s in loaded])
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise _fail(f"{definition_file}: invalid definition") from None
    except OSError as exc:
        raise _fail(f"cannot read {definition_file}: {exc}") from None
    except (UsageError, LoadError, KillError) as exc:
        raise _fail(str(exc)) from None
    missing = Catalog([definition]).task_types - {t for s in loaded for t in s.task_types}
    if missing:
        raise _fail(f"no service handles task type(s): {', '.join(sorted(missing))}")
    if note:
        print(f"podium: {note}", file=sys.stderr)
    options = Options(
        runs=runs,
        concurrency=concurrency,
        fail_rate=fail_rate,
        inputs=payloads,
        kills=kills,
        processes=not (in_process or is_memory(settings.bootstrap_servers or "")),
        sources=Sources(definition_file.resolve(), tuple(services)),
    )
    configure_logging()
    with bootstrap_or_embedded(settings.bootstrap_servers) as bootstrap:
        code = run_compare(
            definition,
            loaded,
            options,
            bootstrap=bootstrap,
            settings=settings,
            report=report,
            json_path=json_path,
        )
    raise typer.Exit(code)


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    from podium.live import print_result

    print_result(result)


def configure_logging() -> None:
    """stderr: text on a terminal, JSON lines otherwise, with workflow and task ids
    (`podium.logs`)."""
    from podium import logs

    logs.configure(os.environ.get("PODIUM_LOG_LEVEL", "INFO"))


def main() -> None:
    app()
