"""Readiness and liveness of a long-running role, on a small HTTP port, and the probe.

`podium conductor|tracker|service|history-store|triggers|api --health-port N` (or
`PODIUM_HEALTH_PORT`; the image sets 8081) answers on `PODIUM_HEALTH_HOST`
(default 127.0.0.1; the image binds 0.0.0.0 for Kubernetes' probes):

| path | 200 when | else |
|---|---|---|
| `/live` | the role's event loop answers (the server runs on it: a loop blocked or wedged does not answer at all) | no answer |
| `/ready` | every part has joined its group, been assigned and restored its state (`Loop.ready`, a worker's `ready`), and is not draining | 503 |

`podium probe ready|live [--port N]` asks it and exits 0 or 1: what the image's
`HEALTHCHECK`, the compose file's healthchecks and `podium up` call. Served from
the role's own asyncio loop, so it costs no thread and says nothing a stuck loop
could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
from collections.abc import Callable

log = logging.getLogger("podium.health")

#: paths and what each answers with when the check holds
PATHS = ("/live", "/ready")


class Health:
    """What the endpoint reports: `ready` asks the role; `draining` is set on SIGTERM."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        self._ready = ready
        self.draining = False

    def status(self, path: str) -> tuple[int, bytes]:
        if path == "/live":
            return 200, b"live\n"
        if path == "/ready":
            if self.draining:
                return 503, b"draining\n"
            return (200, b"ready\n") if self._ready() else (503, b"not ready\n")
        return 404, b"not found: /live or /ready\n"


async def serve(health: Health, port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """Answer `GET /live` and `GET /ready` on the running loop; returns the server."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            parts = request.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            code, body = health.status(path)
            reason = http.client.responses.get(code, "")
            head = (
                f"HTTP/1.0 {code} {reason}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (OSError, TimeoutError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("health on http://%s:%d/ready and /live", host, bound)
    return server


def probe(what: str, port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> tuple[bool, str]:
    """Ask a role's endpoint: (healthy, what it said or why it could not be asked)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", f"/{what}")
        response = connection.getresponse()
        said = response.read().decode("utf-8", "replace").strip()
        return response.status == 200, said
    except OSError as exc:
        return False, f"no answer on {host}:{port}: {exc}"
    finally:
        connection.close()
