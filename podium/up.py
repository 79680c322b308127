"""`podium up`: a compose file's Podium services as local processes, where no Docker runs.

It reads the compose file as `docker compose up` would (profiles, `depends_on`
conditions, `command`, `environment`, `ports`, `healthcheck`) and runs each
Podium service (an image named `podium...`, or built here) as `python -m podium
<command>` in the project directory. What needs Docker is replaced:

- the Kafka service (an `apache/kafka` image) by the embedded broker (or Apache
  Kafka from its jars, `--broker apache-kafka`) on the host port its `ports:`
  publish, so the host reaches it where it would under Docker;
- a PostgreSQL service by a local PostgreSQL server from Debian's binaries
  (`podium.postgres`) with the service's user and database, or, where there is
  none (or with `--database sqlite`), by a SQLite file in the data directory;
- every address of a replaced service in an environment value (`kafka:19092`,
  `postgresql://...@postgres/...`) by the local one.

A service's `ports:` are honoured (`--port C` in its command becomes the host
port, `--host 0.0.0.0` the loopback address); each gets a health port of its own
(`PODIUM_HEALTH_PORT`), and its healthcheck command runs locally with its
environment. Nothing is restarted: a long-running service that exits stops them
all (exit 1). SIGINT or SIGTERM sends SIGTERM to every process, SIGKILL to what
is left after `STOP_BOUND_S`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from podium import health, postgres
from podium.broker import EmbeddedBroker, free_port

#: every process it started is gone this long after SIGINT/SIGTERM (SIGKILL at the bound)
STOP_BOUND_S = 50.0
COLOURS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)


class UpError(RuntimeError):
    """The compose file cannot be run here: the message says why."""


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    depends_on: dict[str, str]
    healthcheck: list[str] | None
    one_shot: bool
    process: subprocess.Popen[bytes] | None = None
    healthy: bool = False
    exited: int | None = None
    colour: int = 0
    reader: threading.Thread | None = field(default=None, repr=False)


@dataclass
class Plan:
    """What `podium up` runs: the broker's host port, the Podium services in file order,
    the services it replaces, and the ones it cannot run (named in a warning)."""

    broker_port: int
    services: list[Service]
    replaced: dict[str, str]
    skipped: list[str]
    urls: list[str]
    #: PostgreSQL services run by a local server: the database it holds, and its port
    databases: dict[str, tuple[postgres.Database, int]] = field(default_factory=dict)


def load(path: Path, profiles: list[str]) -> dict[str, dict[str, Any]]:
    """The services of a compose file that run under these profiles."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UpError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise UpError(f"{path}: no services")
    chosen: dict[str, dict[str, Any]] = {}
    for name, service in document["services"].items():
        wanted = service.get("profiles") or []
        if not wanted or set(wanted) & set(profiles):
            chosen[name] = service
    return chosen


def kind_of(service: dict[str, Any]) -> str:
    image = str(service.get("image", ""))
    if image.startswith(("apache/kafka", "bitnami/kafka", "confluentinc/cp-kafka")):
        return "kafka"
    if image.startswith("postgres"):
        return "postgres"
    if image.startswith("podium") or "build" in service:
        return "podium"
    return "other"


def _ports(service: dict[str, Any]) -> list[tuple[str | None, int, int]]:
    """(host address, host port, container port) of each `ports:` entry."""
    found: list[tuple[str | None, int, int]] = []
    for entry in service.get("ports") or []:
        text = (
            str(entry.get("published", "")) + ":" + str(entry["target"])
            if isinstance(entry, dict)
            else str(entry)
        )
        parts = text.split("/")[0].split(":")
        if len(parts) == 2:
            found.append((None, int(parts[0]), int(parts[1])))
        elif len(parts) == 3:
            found.append((parts[0], int(parts[1]), int(parts[2])))
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _database(service: dict[str, Any]) -> postgres.Database:
    """The user and database the postgres image would create, from its environment."""
    env = _environment(service)
    user = env.get("POSTGRES_USER") or "postgres"
    return postgres.Database(user=user, name=env.get("POSTGRES_DB") or user)


def plan(
    services: dict[str, dict[str, Any]],
    data_dir: Path,
    broker_port: int | None = None,
    sqlite_because: str | None = None,
    broker_name: str = "the embedded broker",
) -> Plan:
    """What runs, and how addresses change. A PostgreSQL service becomes a local server,
    or SQLite when `sqlite_because` says why there is none."""
    kafka = [n for n, s in services.items() if kind_of(s) == "kafka"]
    databases_run = [n for n, s in services.items() if kind_of(s) == "postgres"]
    if len(kafka) > 1:
        raise UpError(f"more than one Kafka service: {', '.join(kafka)}")
    if broker_port is None:
        published = _ports(services[kafka[0]]) if kafka else []
        broker_port = published[0][1] if published else free_port()
    bootstrap = f"127.0.0.1:{broker_port}"
    history = f"sqlite:///{(data_dir / 'history.db').resolve()}"
    rewrites: list[tuple[re.Pattern[str], str]] = [
        (re.compile(rf"\b{re.escape(n)}:\d+"), bootstrap) for n in kafka
    ]
    replaced = {n: f"{broker_name} at {bootstrap}" for n in kafka}
    databases: dict[str, tuple[postgres.Database, int]] = {}
    for n in databases_run:
        if sqlite_because is None:
            databases[n] = (_database(services[n]), free_port())
            address = f"127.0.0.1:{databases[n][1]}"
            # the URL keeps its user, password and database: only the host moves
            url = rf"(postgres(?:ql)?(?:\+\w+)?://[^\s,@/]*@){re.escape(n)}(?::\d+)?/"
            rewrites.append((re.compile(url), rf"\g<1>{address}/"))
            user, name = databases[n][0].user, databases[n][0].name
            replaced[n] = f"a local PostgreSQL at {address} (user {user}, database {name})"
        else:
            url = rf"postgres(?:ql)?(?:\+\w+)?://[^\s,]*@{re.escape(n)}(?::\d+)?/\S*"
            rewrites.append((re.compile(url), history))
            replaced[n] = f"SQLite at {history} ({sqlite_because})"
    ours = {n: s for n, s in services.items() if kind_of(s) == "podium"}
    skipped = [n for n, s in services.items() if kind_of(s) == "other"]
    built: list[Service] = []
    urls: list[str] = []
    for index, (name, service) in enumerate(ours.items()):
        command = service.get("command") or []
        if isinstance(command, str):
            command = command.split()
        argv, answers_on = _published(list(map(str, command)), _ports(service))
        urls += answers_on
        env = _environment(service)
        for key, value in env.items():
            for pattern, local in rewrites:
                value = pattern.sub(local, value)
            env[key] = value
        env["PODIUM_HEALTH_PORT"] = str(free_port())  # one host: a port each
        env.pop("PODIUM_HEALTH_HOST", None)
        env.pop("PODIUM_METRICS_PORT", None)
        env.pop("PODIUM_METRICS_HOST", None)
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        test = (service.get("healthcheck") or {}).get("test")
        disabled = (service.get("healthcheck") or {}).get("disable")
        built.append(
            Service(
                name=name,
                argv=[sys.executable, "-m", "podium", *argv],
                env=env,
                depends_on={
                    d: str(c.get("condition", "service_started")) for d, c in depends.items()
                },
                healthcheck=None if disabled or not test else _local_test(test),
                one_shot=str(service.get("restart", "no")) == "no",
                colour=COLOURS[index % len(COLOURS)],
            )
        )
    return Plan(broker_port, built, replaced, skipped, urls, databases)


def _published(
    argv: list[str], ports: list[tuple[str | None, int, int]]
) -> tuple[list[str], list[str]]:
    """The command with each published container port served on its host port, on
    loopback unless the mapping names an address; and the URLs it will answer on."""
    urls = []
    for address, host_port, container_port in ports:
        for i, arg in enumerate(argv[:-1]):
            if arg == "--port" and argv[i + 1] == str(container_port):
                argv[i + 1] = str(host_port)
                urls.append(f"http://{address or '127.0.0.1'}:{host_port}/")
        for i, arg in enumerate(argv[:-1]):
            if arg == "--host" and argv[i + 1] in ("0.0.0.0", "::"):
                argv[i + 1] = address or "127.0.0.1"
    return argv, urls


def _local_test(test: list[str] | str) -> list[str]:
    """A healthcheck's command, run here: `podium ...` as this Python's podium."""
    if isinstance(test, str):
        return ["sh", "-c", test]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", test[1]]
    argv = [str(a) for a in (test[1:] if test[0] == "CMD" else test)]
    if argv and argv[0] == "podium":
        argv = [sys.executable, "-m", "podium", *argv[1:]]
    return argv


class Up:
    """Runs a plan: starts each service once its dependencies hold, prefixes its output,
    stops everything on a signal or when a service fails."""

    def __init__(self, plan: Plan, project: Path, out: TextIO, colour: bool) -> None:
        self.plan = plan
        self.project = project
        self.out = out
        self.colour = colour
        self.width = max([len(s.name) for s in plan.services] + [6])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signalled = False

    def say(self, name: str, line: str, colour: int = 0) -> None:
        prefix = f"{name:<{self.width}} | "
        if self.colour and colour:
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self._lock:
            self.out.write(prefix + line.rstrip("\n") + "\n")
            self.out.flush()

    def signal(self, signum: int, frame: object) -> None:
        self._signalled = True
        self._stop.set()

    def run(self) -> int:
        """Until a signal (0) or a failed service (1); every process stopped before it returns."""
        waiting = list(self.plan.services)
        ready_said = False
        failed = None
        try:
            while not self._stop.is_set():
                for service in list(waiting):
                    if self._due(service):
                        self._start(service)
                        waiting.remove(service)
                failed = self._check()
                if failed is not None:
                    break
                if (
                    not ready_said
                    and not waiting
                    and all(self._settled(s) for s in self.plan.services)
                ):
                    ready_said = True
                    self._ready()
                self._stop.wait(0.3)
        finally:
            self._shutdown()
        if failed is not None:
            print(f"podium up: {failed}; everything stopped", file=sys.stderr, flush=True)
            return 1
        return 0

    def _ready(self) -> None:
        for url in self.plan.urls:
            self.say("podium", f"up: {url}")
        print("podium: ready", file=sys.stderr, flush=True)

    def _settled(self, service: Service) -> bool:
        if service.one_shot:
            return service.exited == 0
        return service.healthy or service.healthcheck is None

    def _due(self, service: Service) -> bool:
        by_name = {s.name: s for s in self.plan.services}
        for name, condition in service.depends_on.items():
            if name in self.plan.replaced or name not in by_name:
                continue  # replaced (ready before any service starts) or not run here
            other = by_name[name]
            if other.process is None:
                return False
            if condition == "service_completed_successfully" and other.exited != 0:
                return False
            if condition == "service_healthy" and not (other.healthy or other.healthcheck is None):
                return False
        return True

    def _start(self, service: Service) -> None:
        env = {**os.environ, **service.env, "PYTHONUNBUFFERED": "1"}
        self.say(service.name, "starting: podium " + " ".join(service.argv[3:]), service.colour)
        service.process = subprocess.Popen(
            service.argv,
            cwd=self.project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches `podium up` alone
        )
        service.reader = threading.Thread(target=self._copy, args=(service,), daemon=True)
        service.reader.start()
        if service.healthcheck is not None and not service.one_shot:
            threading.Thread(target=self._probe, args=(service,), daemon=True).start()

    def _copy(self, service: Service) -> None:
        assert service.process is not None and service.process.stdout is not None
        for raw in service.process.stdout:
            self.say(service.name, raw.decode("utf-8", "replace"), service.colour)

    def _probe(self, service: Service) -> None:
        assert service.healthcheck is not None
        env = {**os.environ, **service.env}
        while not self._stop.is_set() and service.exited is None:
            if _healthy(service.healthcheck, env, self.project):
                if not service.healthy:
                    self.say(service.name, "healthy", service.colour)
                service.healthy = True
                return
            self._stop.wait(0.5)

    def _check(self) -> str | None:
        for service in self.plan.services:
            if service.process is None or service.exited is not None:
                continue
            code = service.process.poll()
            if code is None:
                continue
            service.exited = code
            if code == 0 and service.one_shot:
                self.say(service.name, "done", service.colour)
                continue
            return f"{service.name} exited with code {code} (podium up restarts nothing)"
        return None

    def _shutdown(self) -> None:
        running = [
            s for s in self.plan.services if s.process is not None and s.process.poll() is None
        ]
        if running:
            self.say(
                "podium",
                f"stopping {len(running)} process(es) (SIGTERM; SIGKILL after {STOP_BOUND_S:g}s)",
            )
        for service in running:
            assert service.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_BOUND_S
        for service in running:
            assert service.process is not None
            try:
                service.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(service.name, "did not stop in time: SIGKILL", service.colour)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait()
        for service in self.plan.services:
            if service.reader is not None:
                service.reader.join(2)


def _healthy(test: list[str], env: dict[str, str], project: Path) -> bool:
    """Run a healthcheck; `podium probe` is asked in this process (no interpreter to start
    for each of a dozen services every half second)."""
    if test[:4] == [sys.executable, "-m", "podium", "probe"] and len(test) in (5, 7):
        port = test[6] if len(test) == 7 and test[5] == "--port" else env.get("PODIUM_HEALTH_PORT")
        if port is not None and port.isdigit() and test[4] in ("ready", "live"):
            return health.probe(test[4], int(port))[0]
    done = subprocess.run(test, cwd=project, env=env, capture_output=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def broker(kind: str, port: int) -> Iterator[str]:
    """The broker that stands in for the Kafka service, on its published port."""
    if kind != "kafka":
        with EmbeddedBroker(port) as embedded:
            yield embedded.bootstrap_servers
        return
    from podium import apache_kafka

    reason = apache_kafka.unavailable()
    if reason:
        raise UpError(f"--broker apache-kafka: {reason}")
    with apache_kafka.ApacheKafka(port=port) as kafka:
        yield kafka.bootstrap_servers


@contextlib.contextmanager
def databases(plan: Plan) -> Iterator[None]:
    """The local PostgreSQL servers of the plan, for as long as `podium up` runs (their
    data in temporary folders: unlike the compose file's volume, it does not outlive them)."""
    with contextlib.ExitStack() as stack:
        for name, (database, port) in plan.databases.items():
            try:
                stack.enter_context(postgres.server(database, port))
            except postgres.PostgresError as exc:
                raise UpError(f"{name}: {exc}") from None
        yield
