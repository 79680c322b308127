"""docker-compose.yml: it parses, every Podium service in it is a valid `podium` invocation
with valid PODIUM_* settings, and the topology is the one the README describes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from podium.cli import app
from podium.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def services() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return loaded


def podium_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("image", "").startswith("podium:")}


def parse(args: list[str]) -> Any:
    """Parse a `podium` command line as the CLI would, converting every value, running
    nothing: the innermost command's context."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("podium", list(args))
    while hasattr(command, "resolve_command"):  # a group (typer ships its own click)
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:  # a group that runs itself (`podium triggers`)
            break
        _, sub, sub_args = command.resolve_command(ctx, rest)
        assert sub is not None
        command, ctx = sub, sub.make_context(sub.name, sub_args, parent=ctx)
    return ctx


@pytest.mark.parametrize("name", sorted(podium_services()))
def test_every_podium_service_is_a_valid_invocation(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = podium_services()[name]
    parse(service["command"])
    # configuration by PODIUM_* variables only, each one a valid setting
    environment = {k: str(v) for k, v in service["environment"].items()}
    assert all(key.startswith("PODIUM_") for key in environment), environment
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.bootstrap_servers == "kafka:19092"
    assert settings.definitions is not None and (ROOT / settings.definitions).is_dir()
    healthcheck = service.get("healthcheck", {})
    if not healthcheck.get("disable"):
        assert healthcheck["test"][:2] == ["CMD", "podium"]
        parse(healthcheck["test"][2:])
        assert settings.health_port is not None


def test_the_topology() -> None:
    every = services()
    kafka = every["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert len(env["KAFKA_ADVERTISED_LISTENERS"].split(",")) == 2  # containers and the host
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert "healthcheck" in kafka and "healthcheck" in every["postgres"]
    podium = podium_services()
    roles = {s["command"][0] for s in podium.values()}
    assert {
        "topics",
        "conductor",
        "tracker",
        "history-store",
        "api",
        "triggers",
        "service",
    } <= roles
    assert podium["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name, service in podium.items():
        if name != "topics":
            conditions = {d["condition"] for d in service["depends_on"].values()}
            assert conditions <= {"service_healthy", "service_completed_successfully"}, name
    assert podium["history-store"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "8080:8080" in podium["api"]["ports"]
    choreography = {n for n, s in podium.items() if "choreography" in s.get("profiles", [])}
    assert choreography == {"order-choreography", "etl-choreography"}
    assert all(podium[n]["environment"]["PODIUM_MODE"] == "choreography" for n in choreography)


def test_docker_compose_config_validates_it() -> None:
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if not plugin or plugin.returncode != 0:
        pytest.skip("no `docker compose` here: the file is checked by parsing it only")
    for profile in ([], ["--profile", "choreography"]):
        done = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
