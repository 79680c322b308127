"""Podium's settings: one pydantic-settings class, `PODIUM_*` environment variables.

Nested settings use `__`: `PODIUM_CONSUMER__FETCH_MAX_WAIT_MS=5`. CLI flags
override the environment. No bootstrap servers means the embedded broker.

How to reach a secured Kafka (SASL, TLS) is `KafkaConnection`, apart from
`Settings`: it is read from the environment (and files) only, never from flags, so
that a password never shows in a process list, a `Settings` dump or a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.events import Mode


class ConsumerSettings(BaseModel):
    # How long a fetch parks on the broker when there is nothing to read. Unset: as suits
    # the broker (`podium.runtime.kafka.learn_broker`): 500 ms on Apache Kafka, which
    # answers a parked fetch when data arrives; 5 ms on tansu, which re-reads storage for
    # a parked fetch only at 0, W/2, 3W/4... of W, so that W is its per-hop latency
    # floor (5 ms gives ~2.4 ms per idle hop; DESIGN.md).
    fetch_max_wait_ms: int | None = Field(None, ge=0, le=10_000)
    # Group changes on tansu are set by the session timeout (a join waits about half).
    session_timeout_ms: int = Field(6_000, ge=1_000)
    heartbeat_interval_ms: int = Field(1_000, ge=100)
    max_poll_records: int = Field(500, ge=1)
    # aiokafka's fetcher does not refresh metadata when a partition's leader stops
    # answering: it retries the dead node until the metadata ages out (5 min by
    # default). A group member learns sooner through its rebalance; a group-less reader
    # (`podium trigger --wait`, a client awaiting ends) would sit out the 5 minutes.
    metadata_max_age_ms: int = Field(5_000, ge=100)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PODIUM_", env_nested_delimiter="__", extra="ignore"
    )

    bootstrap_servers: str | None = None
    partitions: int = Field(8, ge=1, le=1024)
    #: idempotent producers (Apache Kafka: a retried send never writes a record twice);
    #: off by default because tansu, the embedded broker, has none
    idempotent_producer: bool = False
    #: replicas of every topic Podium creates (3 on a three-broker Kafka cluster)
    replication_factor: int = Field(1, ge=1, le=16)
    definitions: Path | None = None
    mode: Mode = Mode.ORCHESTRATION
    history_url: str | None = None
    #: serve Prometheus metrics at `/metrics` on this port (long-running roles; 0: any free)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    #: the address the metrics endpoint binds (0.0.0.0 to be scraped from other hosts)
    metrics_host: str = "127.0.0.1"
    #: serve readiness and liveness at `/ready` and `/live` on this port (long-running roles)
    health_port: int | None = Field(None, ge=0, le=65535)
    #: the address the health endpoint binds (0.0.0.0 for Kubernetes' probes)
    health_host: str = "127.0.0.1"
    #: seconds a role drains on SIGTERM before it abandons what is left and exits
    drain_timeout_s: float = Field(30.0, ge=0)
    #: handlers running at once in one service process (backpressure beyond it)
    concurrency: int = Field(64, ge=1, le=10_000)
    #: the largest handler output (serialised JSON); a larger one fails the task for good
    max_output_bytes: int = Field(256 * 1024, ge=1, le=1_000_000)
    #: how often a service may die running one command before it gives up on it
    max_deliveries: int = Field(3, ge=1, le=100)
    #: workflows a conductor runs at once; beyond it, new triggers wait on their topic
    #: (backpressure: memory stays bounded under a burst, nothing is lost). Workflows
    #: waiting on a timer or a signal count too, so it is set high: a waiting state is
    #: kept as its JSON (a few KB), and the cap is for bursts, not for a day's orders
    max_running: int = Field(50_000, ge=1, le=10_000_000)
    #: seconds a finished workflow's full state stays in memory and the changelog
    retention_s: float = Field(60.0, ge=0)
    #: seconds a finished workflow's id (and, at the conductor and tracker, its result) is
    #: remembered, so that a trigger with that id does not start it again (default 7 days)
    ended_retention_s: float = Field(7 * 24 * 3600.0, ge=0)
    #: ... and how many ended ids a conductor, tracker or choreography service remembers
    #: at most, whatever their age (the oldest are forgotten first, and tombstoned in the
    #: changelog): about 1 KB of memory each at the conductor and tracker
    ended_ids: int = Field(100_000, ge=1)
    #: how often a consumer commits its input (Kafka Streams' `commit.interval.ms`); the
    #: conductor, tracker and participants write each changed state once per interval, so
    #: a longer one writes fewer snapshots and a crash replays more input
    commit_interval_ms: int = Field(200, ge=1, le=600_000)
    consumer: ConsumerSettings = ConsumerSettings()


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _secret_from(value: SecretStr | None, file: Path | None, name: str) -> SecretStr | None:
    """A secret given inline or by a file (a Docker or Kubernetes secret mount), not both."""
    if value is not None and file is not None:
        raise ValueError(f"set PODIUM_{name} or PODIUM_{name}_FILE, not both")
    if file is None:
        return value
    try:
        return SecretStr(file.read_text().rstrip("\r\n"))
    except OSError as exc:
        raise ValueError(f"PODIUM_{name}_FILE: cannot read {file}: {exc.strerror}") from None


class KafkaConnection(BaseSettings):
    """How every Kafka client of a process connects: security protocol, SASL, TLS.

    `PODIUM_SECURITY_PROTOCOL` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), then
    `PODIUM_SASL_MECHANISM` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with
    `PODIUM_SASL_USERNAME` and `PODIUM_SASL_PASSWORD` (or `PODIUM_SASL_PASSWORD_FILE`),
    and `PODIUM_SSL_CAFILE`, `PODIUM_SSL_CERTFILE`, `PODIUM_SSL_KEYFILE`,
    `PODIUM_SSL_KEY_PASSWORD` (or `_FILE`) for TLS. A setting the protocol does not
    use is an error rather than ignored: a half-secured deployment should not start.
    """

    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore")

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    #: CA bundle that signed the brokers' certificates (the system's CAs when unset)
    ssl_cafile: Path | None = None
    #: client certificate (PEM), for brokers that require one (`ssl.client.auth=required`)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: Path | None = None
    # the secrets as given inline or read from their files, by `_consistent`
    _sasl_secret: SecretStr | None = PrivateAttr(None)
    _key_secret: SecretStr | None = PrivateAttr(None)

    @property
    def sasl_secret(self) -> str | None:
        return self._sasl_secret.get_secret_value() if self._sasl_secret else None

    @property
    def key_secret(self) -> str | None:
        return self._key_secret.get_secret_value() if self._key_secret else None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        given_sasl = [
            name
            for name in ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file")
            if getattr(self, name) is not None
        ]
        given_tls = [
            name
            for name in (
                "ssl_cafile",
                "ssl_certfile",
                "ssl_keyfile",
                "ssl_key_password",
                "ssl_key_password_file",
            )
            if getattr(self, name) is not None
        ]
        unused = (given_sasl if not sasl else []) + (given_tls if not tls else [])
        if unused:
            names = ", ".join(f"PODIUM_{name.upper()}" for name in unused)
            raise ValueError(
                f"{names} set, but PODIUM_SECURITY_PROTOCOL is {self.security_protocol}"
            )
        password = _secret_from(self.sasl_password, self.sasl_password_file, "SASL_PASSWORD")
        key_password = _secret_from(
            self.ssl_key_password, self.ssl_key_password_file, "SSL_KEY_PASSWORD"
        )
        if sasl and (self.sasl_mechanism is None or not self.sasl_username or password is None):
            raise ValueError(
                f"PODIUM_SECURITY_PROTOCOL={self.security_protocol} needs PODIUM_SASL_MECHANISM,"
                " PODIUM_SASL_USERNAME and PODIUM_SASL_PASSWORD (or PODIUM_SASL_PASSWORD_FILE)"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("PODIUM_SSL_KEYFILE set without PODIUM_SSL_CERTFILE")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"PODIUM_{name.upper()}: no file {path}")
        self._sasl_secret, self._key_secret = password, key_password
        return self


def kafka_connection() -> KafkaConnection:
    """This process's connection settings, from its environment.

    A problem is raised as a ValueError that names the settings but never repeats
    their values (pydantic's own message would echo a password given beside it).
    """
    try:
        return KafkaConnection()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'connection'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid Kafka connection settings: {problems}") from None
