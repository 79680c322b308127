"""`podium up` runs docker-compose.yml here, without Docker: the order example end to end
through the topology the file describes, then SIGTERM to `podium up` alone stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from podium import postgres
from podium.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
ORDER = '{"sku": "A-1", "qty": 2, "amount": 30}'

pytestmark = pytest.mark.slow


def podium(*args: str) -> list[str]:
    return [sys.executable, "-m", "podium", *args]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_podium_up_runs_the_compose_file_end_to_end_in_both_modes(tmp_path: Path) -> None:
    """The choreography profile runs every service of the default one too: one `podium up`
    (about 30 s on two loaded cores) carries the order example in both modes."""
    # the same file, published on free host ports (others may hold 9092 and 8080)
    kafka_port, api_port = free_port(), free_port()
    text = (ROOT / "docker-compose.yml").read_text()
    text = text.replace('"9092:9092"', f'"{kafka_port}:9092"')
    text = text.replace('"8080:8080"', f'"{api_port}:8080"')
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(text)
    env = {**os.environ, "PODIUM_CONSUMER__SESSION_TIMEOUT_MS": "3000", "NO_COLOR": "1"}
    env.pop("PODIUM_BOOTSTRAP_SERVERS", None)
    env.pop("PODIUM_HISTORY_URL", None)
    command = [
        *podium("up", str(compose), "--profile", "choreography"),
        *("--project-directory", str(ROOT), "--data-dir", str(tmp_path / "data")),
    ]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as up:
        said, code, stopped_in = drive(up, kafka_port, api_port, env)
    assert code == 0, "".join(said[-40:])
    assert stopped_in < 60
    assert not listening(api_port) and not listening(kafka_port)
    # prefixed output, and every Podium service of the file healthy before the trigger
    lines = [line.split("|", 1) for line in said if "|" in line]
    healthy = {name.strip() for name, text in lines if text.strip() == "healthy"}
    assert {"conductor", "tracker", "history-store", "api", "triggers", "order", "etl"} <= healthy
    assert {"order-choreography", "etl-choreography"} <= healthy
    # PostgreSQL is a local server where its binaries are (.ci/run installs them), else SQLite
    stand_in = "a local PostgreSQL" if postgres.unavailable() is None else "SQLite"
    assert any(f"postgres replaced by {stand_in}" in line for line in said), said[:5]


def drive(
    up: subprocess.Popen[str], kafka_port: int, api_port: int, env: dict[str, str]
) -> tuple[list[str], int, float]:
    """Wait for `podium up`, run the order example through it in both modes, SIGTERM it."""
    ready = threading.Event()
    said: list[str] = []

    def watch() -> None:
        assert up.stderr is not None
        for line in up.stderr:
            said.append(line)
            if line.strip() == "podium: ready":
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    output = threading.Thread(target=lambda: said.extend(up.stdout or []), daemon=True)
    output.start()
    try:
        assert ready.wait(90), "".join(said[-40:])
        bootstrap = f"127.0.0.1:{kafka_port}"
        triggers = {
            mode: subprocess.Popen(
                [
                    *podium("trigger", "order", "--input", ORDER, "--wait", "--json"),
                    *("--timeout", "30", "--mode", mode, "--definitions", "examples"),
                    *("--bootstrap-servers", bootstrap),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode in ("orchestration", "choreography")
        }
        ids = set()
        for mode, trigger in triggers.items():
            out, err = trigger.communicate(timeout=60)
            assert trigger.returncode == 0, err
            result = orjson.loads(out)
            assert (result["state"], result["mode"]) == ("Succeeded", mode)
            ids.add(result["workflow_id"])
        # the dashboard's API, on the host port the compose file publishes, recorded both
        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/workflows") as answer:
                listed = orjson.loads(answer.read())["workflows"]
            if ids <= {w["workflow_id"] for w in listed if w["state"] == "Succeeded"}:
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/") as page:
            assert page.status == 200
    finally:
        started = time.monotonic()
        up.send_signal(signal.SIGTERM)  # to `podium up` alone, not its process group
        code = up.wait(70)
        stopped_in = time.monotonic() - started
    return said, code, stopped_in
