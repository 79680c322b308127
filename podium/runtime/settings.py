"""Podium's settings: one pydantic-settings class, `PODIUM_*` environment variables.

Nested settings use `__`: `PODIUM_CONSUMER__FETCH_MAX_WAIT_MS=5`. CLI flags
override the environment. No bootstrap servers means the embedded broker.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.events import Mode


class ConsumerSettings(BaseModel):
    # tansu re-reads storage for a parked fetch only at 0, W/2, 3W/4... of W, so W
    # is the per-hop latency floor: 5 ms gives ~2.4 ms per idle hop (DESIGN.md).
    fetch_max_wait_ms: int = Field(5, ge=0, le=10_000)
    # Group changes on tansu are set by the session timeout (a join waits about half).
    session_timeout_ms: int = Field(6_000, ge=1_000)
    heartbeat_interval_ms: int = Field(1_000, ge=100)
    max_poll_records: int = Field(500, ge=1)


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
    #: seconds a finished workflow's full state stays in memory and the changelog
    retention_s: float = Field(60.0, ge=0)
    #: seconds a finished workflow's id (and, at the conductor and tracker, its result) is
    #: remembered, so that a trigger with that id does not start it again (default 7 days)
    ended_retention_s: float = Field(7 * 24 * 3600.0, ge=0)
    consumer: ConsumerSettings = ConsumerSettings()
