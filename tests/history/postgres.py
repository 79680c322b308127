"""A throwaway PostgreSQL server from Debian's `postgresql` binaries, in a temporary folder.

`initdb` and `pg_ctl` from PATH or `/usr/lib/postgresql/<version>/bin` (found, and
`unavailable()` decided, by `podium.postgres`, which `podium up` uses too); trust
authentication for the `podium` user, listening on a free loopback port only.
PostgreSQL refuses to run as root, so as root (CI) the server runs as the
`postgres` account the Debian package creates (`runuser`). `unavailable()` says
why it cannot start here (the tests skip with that reason); `.ci/run` installs
the package, `make test` never does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from podium.postgres import bin_dir as _bin_dir
from podium.postgres import unavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[str]:
    """The URL of a fresh server's `postgres` database; stopped and removed after.

    `durable=False` (tests) turns fsync off; benchmarks keep PostgreSQL's defaults.
    """
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = _bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="podium-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def run(*args: str | Path) -> None:
        done = subprocess.run(
            [*as_user, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()} {log[-2000:]}")

    try:
        run(bin_dir / "initdb", "-D", data, "-U", "podium", "--auth=trust", "-E", "UTF8", "-N")
        run(bin_dir / "pg_ctl", "-D", data, "-l", root / "log", "-o", options, "-w", "start")
        try:
            yield f"postgresql://podium@127.0.0.1:{port}/postgres"
        finally:
            run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server; its URL."""
    import asyncpg

    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
