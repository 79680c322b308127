"""A local PostgreSQL server from Debian's binaries, for `podium up`'s `postgres` service.

`initdb`, `pg_ctl` and `createdb` come from PATH or `/usr/lib/postgresql/<version>/bin`
(the `postgresql` package). The server listens on one loopback port only, its
socket in its own folder, with trust authentication for loopback: it stands in for
a container no one else reaches. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` account the Debian package creates (`runuser`).
`unavailable()` says why a server cannot start here; `podium up` then keeps SQLite.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: the account a server started by root runs as (Debian's `postgresql` package makes it)
ACCOUNT = "postgres"


class PostgresError(RuntimeError):
    """A local PostgreSQL server could not be set up or started: the message says why."""


def bin_dir() -> Path | None:
    """The folder of the server's binaries: `initdb`'s on PATH, else the newest Debian one."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def unavailable() -> str | None:
    """None when a server can be started here, else why not."""
    found = bin_dir()
    if found is None:
        return "no PostgreSQL server binaries (initdb) on PATH or in /usr/lib/postgresql"
    if not (found / "pg_ctl").exists() or not (found / "createdb").exists():
        return f"no pg_ctl or createdb beside {found / 'initdb'}"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root, and no runuser to start PostgreSQL as another user"
        try:
            pwd.getpwnam(ACCOUNT)
        except KeyError:
            return f"running as root, and no {ACCOUNT} account to run PostgreSQL as"
    return None


@dataclass(frozen=True)
class Database:
    """What a compose file's PostgreSQL service offers: its superuser and its database
    (the image's POSTGRES_USER and POSTGRES_DB, both `postgres` when unset)."""

    user: str = "postgres"
    name: str = "postgres"


@contextlib.contextmanager
def server(database: Database, port: int) -> Iterator[Path]:
    """Run a server on 127.0.0.1:`port` with `database` in it; yield its data folder.

    The data lives in a temporary folder, removed once the server is stopped: one that
    is certain to be writable by the server's account (as root, `postgres`) and short
    enough for the server's Unix socket (at most 107 bytes), wherever the project is.
    """
    reason = unavailable()
    if reason is not None:
        raise PostgresError(reason)
    binaries = bin_dir()
    assert binaries is not None
    root = Path(tempfile.mkdtemp(prefix="podium-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam(ACCOUNT)
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", ACCOUNT, "--"]
    data, log = root / "data", root / "server.log"

    def run(*args: str | Path) -> None:
        done = subprocess.run(
            [*as_user, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
            raise PostgresError(f"{Path(args[0]).name} failed: {done.stderr.strip()} {tail}")

    try:
        # throwaway data need not survive a power cut: no fsyncs (initdb ~1 s faster)
        run(
            binaries / "initdb", "-D", data, "-U", database.user,
            "--auth=trust", "-E", "UTF8", "--no-instructions", "--no-sync",
        )  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(binaries / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
        try:
            if database.name != "postgres":  # initdb made that one
                run(
                    binaries / "createdb", "-h", "127.0.0.1", "-p", str(port),
                    "-U", database.user, database.name,
                )  # fmt: skip
            yield data
        finally:
            run(binaries / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
