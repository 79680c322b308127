"""Apache Kafka from its jars: one KRaft broker, or a three-node cluster, on loopback.

The jars are fetched once by Maven from the pom shipped in the package
(`podium/jvm/pom.xml`, the one place the Kafka version is pinned) into
`~/.cache/podium/kafka-VERSION/libs`, or `$PODIUM_KAFKA_HOME/libs`. Every node is
a combined broker and controller (`process.roles=broker,controller`) with its
log dir in a temporary folder; `kafka.tools.StorageTool` formats it, then
`java -cp ... kafka.Kafka server.properties` runs it. Readiness is a real Kafka
round trip: a Metadata request that lists every node of the cluster.

With `secure=SaslSsl(...)` every node also listens with SASL_SSL on a second port:
TLS from a PEM key and certificate, SCRAM users created by the storage tool at
format time (`--add-scram`), and a client certificate required when a client CA
is given; the PLAINTEXT listener stays for the brokers' own traffic and readiness.

Needs java >= 17; mvn only for the first fetch. The JVMs are kept small
(`PODIUM_KAFKA_HEAP_OPTS`, default `-Xmx256m -Xms64m`, serial GC) so a
three-node cluster and the test suite fit on two cores.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from podium.broker import HOST, BrokerError, free_port, read_exactly

POM = Path(__file__).parent / "jvm" / "pom.xml"
HEAP_OPTS = "-Xmx256m -Xms64m"
#: small JVMs that start fast: one GC thread, no C2 compiler warm-up on two cores
JVM_OPTS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:ReservedCodeCacheSize=64m",
    "-Xss512k",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
]
MIN_JAVA = 17

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""


class ApacheKafkaError(BrokerError):
    """Java, Maven or the jars are missing, or a Kafka node did not start."""


@dataclass(frozen=True)
class SaslSsl:
    """A SASL_SSL listener: TLS with `keystore`, and `users` (name -> password) for each
    of `mechanisms`: SCRAM users are created at format time, PLAIN ones listed in the
    listener's JAAS config (Kafka's PlainLoginModule).

    `keystore` is one PEM file holding the broker's private key (PKCS#8, unencrypted)
    and its certificate chain; `client_ca`, when given, is the PEM bundle client
    certificates must be signed by (`ssl.client.auth=required`).
    """

    keystore: Path
    users: Mapping[str, str] = field(default_factory=dict)
    client_ca: Path | None = None
    mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

    def __post_init__(self) -> None:
        unknown = set(self.mechanisms) - {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
        if unknown:
            raise ApacheKafkaError(f"SASL mechanisms not supported here: {sorted(unknown)}")
        if not self.keystore.is_file():
            raise ApacheKafkaError(f"no keystore {self.keystore}")
        if self.client_ca is not None and not self.client_ca.is_file():
            raise ApacheKafkaError(f"no client CA {self.client_ca}")
        for name, password in self.users.items():
            # the storage tool parses `[name=...,password=...]` and the JAAS config quotes
            # the password: these would break them
            if not name or not password or any(c in name + password for c in ',[]=";\\ '):
                raise ApacheKafkaError(f'SASL user {name!r}: empty, or a space or one of ,[]=";\\')

    def scram_args(self) -> list[str]:
        """The storage tool's arguments that create every user for every mechanism."""
        return [
            arg
            for mechanism in self.mechanisms
            if mechanism.startswith("SCRAM-")
            for name, password in self.users.items()
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]

    def properties(self) -> dict[str, object]:
        """The listener's entries of server.properties (its name is `SASL_SSL`)."""
        prefix = "listener.name.sasl_ssl"
        found: dict[str, object] = {
            "sasl.enabled.mechanisms": ",".join(self.mechanisms),
            f"{prefix}.ssl.keystore.type": "PEM",
            f"{prefix}.ssl.keystore.location": self.keystore,
        }
        for mechanism in self.mechanisms:
            if mechanism == "PLAIN":
                users = " ".join(f'user_{n}="{p}"' for n, p in self.users.items())
                module = (
                    f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
                )
            else:
                module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            found[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = module
        if self.client_ca is not None:
            found[f"{prefix}.ssl.truststore.type"] = "PEM"
            found[f"{prefix}.ssl.truststore.location"] = self.client_ca
            found[f"{prefix}.ssl.client.auth"] = "required"
        return found


def kafka_version() -> str:
    """The Kafka version pinned in the shipped pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    found = ET.parse(POM).getroot().find("m:properties/m:kafka.version", ns)
    if found is None or not found.text:  # pragma: no cover - the shipped pom has it
        raise ApacheKafkaError(f"{POM} pins no kafka.version")
    return found.text.strip()


def kafka_home() -> Path:
    """The cache folder of the pinned version's jars (`$PODIUM_KAFKA_HOME` overrides)."""
    configured = os.environ.get("PODIUM_KAFKA_HOME")
    if configured:
        return Path(configured).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "podium" / f"kafka-{kafka_version()}"


def libs_dir(home: Path | None = None) -> Path:
    return (home or kafka_home()) / "libs"


def fetched(libs: Path) -> bool:
    """True when `libs` holds the broker's jars (it only ever appears complete)."""
    return any(libs.glob("kafka_2.13-*.jar"))


def java_binary() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def java_major(java: str) -> int | None:
    """The major version `java -version` reports (8 for "1.8.0"), None if it does not run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError:
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def _java_problem() -> str | None:
    java = java_binary()
    if java is None:
        return f"java >= {MIN_JAVA} is needed to run Apache Kafka; none is on PATH"
    major = java_major(java)
    if major is None or major < MIN_JAVA:
        return f"java >= {MIN_JAVA} is needed to run Apache Kafka; {java} is {major or 'unknown'}"
    return None


def unavailable() -> str | None:
    """Why Apache Kafka cannot start here without a network fetch; None when it can."""
    problem = _java_problem()
    if problem:
        return problem
    if not fetched(libs_dir()):
        return (
            f"Apache Kafka {kafka_version()} jars not fetched into {kafka_home()} (make kafka-jars)"
        )
    return None


def fetch(home: Path | None = None) -> Path:
    """Fetch the pinned broker's jars once; return their folder.

    Idempotent and atomic: Maven copies into a temporary folder beside the cache,
    renamed into place only when complete, so a failed or concurrent fetch never
    leaves a half-filled cache.
    """
    home = home or kafka_home()
    libs = libs_dir(home)
    if fetched(libs):
        return libs
    problem = _java_problem()
    if problem:
        raise ApacheKafkaError(problem)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ApacheKafkaError("mvn is needed to fetch Apache Kafka's jars; none is on PATH")
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=home))
    try:
        shutil.copy(POM, staging / "pom.xml")
        cmd = [
            mvn,
            "-q",
            "-B",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging / 'libs'}",
        ]
        done = subprocess.run(cmd, cwd=staging, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
            raise ApacheKafkaError(f"mvn could not fetch Apache Kafka's jars: {last[0]}")
        try:
            (staging / "libs").rename(libs)
        except OSError:  # another fetch won the race: its jars are the same
            if not fetched(libs):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


def cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Never one that starts with "-" (1 in 64 do): the storage tool would read it as an
    option ("argument --cluster-id/-t: expected one argument"); Kafka's own
    `Uuid.randomUuid` skips those too.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def metadata_brokers(host: str, port: int, timeout: float = 1.0) -> int | None:
    """Ask one node for the cluster's metadata (Metadata v4, no topics).

    Returns how many brokers it lists (a broker is listed once registered and
    unfenced), or None when it does not answer.
    """
    client_id = b"podium"
    correlation_id = 11
    header = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    body = header + struct.pack(">i?", 0, False)  # topics: empty array; no auto-creation
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size, answered_id = struct.unpack(">ii", read_exactly(sock, 8))
            payload = read_exactly(sock, size - 4)
    except (OSError, struct.error):
        return None
    if answered_id != correlation_id or len(payload) < 8:
        return None
    _throttle_ms, brokers = struct.unpack_from(">ii", payload)
    return int(brokers)


def server_properties(
    node_id: int,
    port: int,
    controller_port: int,
    voters: str,
    log_dir: Path,
    nodes: int,
    secure: tuple[SaslSsl, int] | None = None,
) -> str:
    """A combined broker+controller's config; replication follows the cluster's size.

    `secure` adds a SASL_SSL listener on its port, advertised beside PLAINTEXT.
    """
    replicas = min(nodes, 3)
    min_isr = 2 if replicas >= 3 else 1
    listeners = f"PLAINTEXT://{HOST}:{port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if secure is not None:
        listeners += f",SASL_SSL://{HOST}:{secure[1]}"
        protocols += ",SASL_SSL:SASL_SSL"
    settings: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": voters,
        "listeners": f"{listeners},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": listeners,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        "log.dirs": log_dir,
        # topics are created explicitly, at their final partition count and replication
        "auto.create.topics.enable": "false",
        "num.partitions": 1,
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 8,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        # a group forms at once; Podium's crash tests use session timeouts down to 3 s
        "group.initial.rebalance.delay.ms": 0,
        "group.min.session.timeout.ms": 1000,
        # a node killed -9 is fenced (and leaves every ISR) after this, and cannot register
        # again before: 4 s instead of 9 s for failure tests (heartbeats every 0.5 s)
        "broker.session.timeout.ms": 4000,
        "broker.heartbeat.interval.ms": 500,
        # small threads and buffers: several nodes and the tests share two cores
        "num.network.threads": 2,
        "num.io.threads": 4,
        "background.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        "log.cleaner.threads": 1,
        "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
        "log.cleaner.backoff.ms": 1000,
    }
    if secure is not None:
        settings.update(secure[0].properties())
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class Node:
    """One combined broker+controller process of an `ApacheKafka` cluster."""

    def __init__(
        self, node_id: int, port: int, controller_port: int, root: Path, secure_port: int = 0
    ) -> None:
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        #: the SASL_SSL listener's port (0: none)
        self.secure_port = secure_port
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """The node's resident memory, from /proc (0 when it is not running)."""
        if not self.alive():
            return 0
        assert self.process is not None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) * 1024 if found else 0


class ApacheKafka:
    """A KRaft cluster of `nodes` combined broker+controllers on loopback ports.

    One node is the single broker of `podium broker --kind kafka` and of the test
    fixture; three make the cluster of the failure tests (replication factor 3,
    `min.insync.replicas=2`). A node can be killed (`kill -9`), stopped and
    started again on its log dir. A context manager that stops every node on exit
    and removes the temporary folder it made.
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        libs: Path | None = None,
        heap_opts: str | None = None,
        secure: SaslSsl | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.secure = secure
        self.libs = libs or libs_dir()
        self.heap_opts = heap_opts or os.environ.get("PODIUM_KAFKA_HEAP_OPTS") or HEAP_OPTS
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="podium-kafka-"))
        ports = [port or free_port()] + [free_port() for _ in range(nodes - 1)]
        self.nodes = [
            Node(
                i + 1,
                ports[i],
                free_port(),
                self.data_dir / f"node-{i + 1}",
                free_port() if secure is not None else 0,
            )
            for i in range(nodes)
        ]
        self.voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.nodes)
        #: how long the last `start` took, format to every node answering (a measured figure)
        self.start_seconds = 0.0

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def secure_bootstrap_servers(self) -> str:
        """The SASL_SSL listeners' addresses (started with `secure=`)."""
        if self.secure is None:
            raise ApacheKafkaError("this cluster has no SASL_SSL listener (secure=None)")
        return ",".join(f"{HOST}:{node.secure_port}" for node in self.nodes)

    def _java(self, main: str, *args: str) -> list[str]:
        java = java_binary()
        if java is None:
            raise ApacheKafkaError(_java_problem() or "no java")
        log4j = self.data_dir / "log4j2.properties"
        return [
            java,
            *self.heap_opts.split(),
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            str(self.libs / "*"),
            main,
            *args,
        ]

    def start(self, timeout: float = 120.0) -> ApacheKafka:
        """Format every node's storage, start them all, wait until each lists them all."""
        began = time.monotonic()
        if not fetched(self.libs):
            raise ApacheKafkaError(unavailable() or f"no Apache Kafka jars in {self.libs}")
        (self.data_dir / "log4j2.properties").write_text(LOG4J2)
        cid = cluster_id()
        formats = []
        for node in self.nodes:
            node.root.mkdir(parents=True, exist_ok=True)
            node.config.write_text(
                server_properties(
                    node.node_id,
                    node.port,
                    node.controller_port,
                    self.voters,
                    node.root / "data",
                    len(self.nodes),
                    (self.secure, node.secure_port) if self.secure is not None else None,
                )
            )
            scram = self.secure.scram_args() if self.secure is not None else []
            cmd = self._java(
                "kafka.tools.StorageTool", "format", "-t", cid, "-c", str(node.config), *scram
            )
            formats.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for node, proc in zip(self.nodes, formats, strict=True):
            out, _ = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                self.stop()
                tail = out.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise ApacheKafkaError(f"formatting node {node.node_id} failed: {tail[0]}")
        try:
            for node in self.nodes:
                self._launch(node)
            self._wait_ready(self.nodes, timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _launch(self, node: Node) -> None:
        with open(node.log, "ab") as out:
            node.process = subprocess.Popen(
                self._java("kafka.Kafka", str(node.config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _wait_ready(self, nodes: list[Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting:
            for node in list(waiting):
                if not node.alive():
                    code = node.process.returncode if node.process else None
                    raise ApacheKafkaError(
                        f"Kafka node {node.node_id} exited with {code} before answering on "
                        f"{node.address}: {node.log_tail()}"
                    )
                if metadata_brokers(HOST, node.port) == len(self.nodes):
                    waiting.remove(node)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(n.address for n in waiting)
                raise ApacheKafkaError(f"Kafka did not answer on {names} within {timeout:.0f}s")
            if waiting:
                time.sleep(0.1)  # polling interval of the readiness probe, not a wait for it

    def kill(self, index: int) -> None:
        """`kill -9` one node (its log dir stays, for `start_node`)."""
        node = self.nodes[index]
        if node.process is not None and node.alive():
            node.process.kill()
            node.process.wait()

    def stop_node(self, index: int, timeout: float = 30.0) -> None:
        """SIGTERM one node (a controlled shutdown), then kill it if it lingers."""
        self._stop([self.nodes[index]], timeout)

    def start_node(self, index: int, timeout: float = 120.0) -> None:
        """Start a stopped or killed node again on its log dir; wait until it rejoined."""
        node = self.nodes[index]
        if node.alive():
            raise ApacheKafkaError(f"Kafka node {node.node_id} is running")
        self._launch(node)
        self._wait_ready([node], timeout)

    def terminate(self) -> None:
        """Ask every node to shut down without waiting (safe inside a signal handler)."""
        for node in self.nodes:
            if node.process is not None and node.alive():
                node.process.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        """Block until a node exits (foreground `podium broker --kind kafka`); its code."""
        while True:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    return node.process.returncode
            first = self.nodes[0].process
            assert first is not None
            try:
                return first.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue

    def stop(self, timeout: float = 30.0) -> None:
        """Shut every node down (SIGTERM, then SIGKILL past `timeout`); remove our folder."""
        self._stop(self.nodes, timeout)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop(self, nodes: list[Node], timeout: float) -> None:
        running = [n.process for n in nodes if n.process is not None and n.alive()]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def rss_bytes(self) -> int:
        return sum(node.rss_bytes() for node in self.nodes)

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":  # `python -m podium.apache_kafka`: the fetch step of `make kafka-jars`
    try:
        print(f"podium: Apache Kafka {kafka_version()} jars in {fetch()}", file=sys.stderr)
    except ApacheKafkaError as exc:
        print(f"podium: Apache Kafka tests will skip: {exc}", file=sys.stderr)
        sys.exit(1)
