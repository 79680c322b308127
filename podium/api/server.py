"""The API on uvicorn, for `podium api`: it says where it listens once it does."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from podium.health import Health, serve


class Server(uvicorn.Server):
    """uvicorn's server, calling `on_ready(port)` once its sockets listen (SIGTERM stops it)."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        on_ready: Callable[[int], None],
        health: tuple[str, int] | None = None,
    ):
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        super().__init__(config)
        self.on_ready = on_ready
        #: (host, port) of the readiness and liveness endpoint (`podium.health`), if any
        self.health = health
        self._health_server: asyncio.Server | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop it gracefully, and the process exits 0 as every role does
        (uvicorn's own handlers raise the signal again once it has stopped)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.health is not None:
            status = Health(lambda: self.started and not self.should_exit)
            self._health_server = await serve(status, self.health[1], self.health[0])
        if self.started:
            ports = {s.getsockname()[1] for server in self.servers for s in server.sockets}
            self.on_ready(min(ports))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._health_server is not None:
            self._health_server.close()
        await super().shutdown(sockets)


def ready(url: str) -> Callable[[int], None]:
    """What `podium api` prints on stderr once it listens (`url` has a `{port}`)."""

    def announce(port: int) -> None:
        print(f"podium: API on {url.replace('{port}', str(port))}", file=sys.stderr)
        print("podium: ready", file=sys.stderr, flush=True)

    return announce
