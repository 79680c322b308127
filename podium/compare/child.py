"""One part of a compare deployment in a process of its own: what `--kill` kills, and on a
broker every part (a process per service, as deployed, each with its own CPU figure).

The parent (`Child`) starts `python -m podium.compare.child ...` with what the part is
built from: the definition file, the services' `MODULE:OBJ` references, the scope's
prefix and mode, the part's role (a service's name, `conductor` or `tracker`) and the
fail rate. The child builds the same scoped deployment the parent would and runs only
that part. It speaks on stdout, one line each: `ready` once the part has its
partitions, and `h <workflow id> <seconds>` per handler call (the probe's figures, kept
by the parent, since a killed process keeps nothing). Its log goes to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from podium.compare.scope import Probe, Scope
from podium.events import Mode
from podium.runtime.settings import Settings
from podium.workflow.catalog import Catalog

READY = b"ready"
#: a SIGTERMed child that has not left its groups by then is killed
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Sources:
    """Where a child builds the deployment from: what the user named on the command line."""

    definition: Path
    services: tuple[str, ...]


@dataclass
class Child:
    """The parent's handle on one out-of-process part; `restart` runs it anew."""

    role: str
    args: list[str]
    log: Path
    on_handler: Probe
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: CPU seconds of the processes that came before this one (killed)
    spent_s: float = 0.0
    _pump: asyncio.Task[None] | None = None

    def cpu_s(self) -> float:
        """CPU seconds of this part's processes so far, the killed ones included."""
        if self.process is None or self.process.returncode is not None:
            return self.spent_s
        return self.spent_s + (cpu_seconds(self.process.pid) or 0.0)

    async def start(self) -> None:
        self.ready = asyncio.Event()
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "podium.compare.child",
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            if line.strip() == READY:
                self.ready.set()
                continue
            parts = line.split()
            if len(parts) == 3 and parts[0] == b"h":  # a line cut short by a kill is dropped
                with contextlib.suppress(ValueError):
                    self.on_handler.record(parts[1].decode(), float(parts[2]))

    async def wait_ready(self) -> None:
        """Return once the part has its partitions; raise if the process exits first."""
        assert self.process is not None
        ready = asyncio.create_task(self.ready.wait())
        exited = asyncio.create_task(self.process.wait())
        done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()
        if ready not in done:
            code = self.process.returncode
            raise RuntimeError(
                f"the {self.role} process exited ({code}) before it was ready; see {self.log}"
            )

    async def kill(self) -> None:
        """SIGKILL: no drain, no commit, no leaving the group (what a crash does)."""
        assert self.process is not None
        self.spent_s = self.cpu_s()  # the last reading: a dead process has no /proc entry
        self.process.kill()
        await self.process.wait()
        if self._pump is not None:
            await self._pump

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._pump is not None:
            await self._pump


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc); None where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_args(
    sources: Sources, scope: Scope, role: str, fail_rate: float, bootstrap: str
) -> list[str]:
    return [
        *("--definition", str(sources.definition)),
        *(arg for ref in sources.services for arg in ("--services", ref)),
        *("--prefix", scope.prefix, "--mode", scope.mode.value, "--role", role),
        *("--fail-rate", repr(fail_rate), "--bootstrap", bootstrap),
    ]


# -- the child's side -------------------------------------------------------------------


class _Reporting(Probe):
    """The probe, each handler call written to stdout for the parent to keep."""

    _out: threading.Lock = threading.Lock()

    def record(self, workflow_id: str, seconds: float) -> None:
        with self._out:
            sys.stdout.write(f"h {workflow_id} {seconds:.6f}\n")
            sys.stdout.flush()


async def _main(args: argparse.Namespace) -> None:
    from podium.loading import load_services
    from podium.runtime.kafka import learn_broker
    from podium.workflow.loader import load_definition

    scope = Scope(args.prefix, Mode(args.mode))
    definition = scope.definition(load_definition(args.definition))
    services = scope.services(load_services(args.services), _Reporting(args.fail_rate))
    catalog = Catalog([definition])
    keep = args.role.__eq__
    await learn_broker(args.bootstrap)  # the fetch wait that suits the broker, as a role's
    (part,) = scope.parts(catalog, services, args.bootstrap, Settings(), keep)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    running = asyncio.create_task(part.run())
    ready = asyncio.create_task(part.ready.wait())
    stopping = asyncio.create_task(stop.wait())
    # a signal counts while it starts too: a part that cannot reach its broker never gets ready
    await asyncio.wait({running, ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # it stopped before it was ready: say why
        return
    if not stopping.done():
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    part.stop()
    with contextlib.suppress(TimeoutError):  # past that, the process exits without its drain
        await asyncio.wait_for(running, STOP_TIMEOUT_S)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m podium.compare.child", description=__doc__)
    p.add_argument("--definition", type=Path, required=True)
    p.add_argument("--services", action="append", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--mode", choices=[m.value for m in Mode], required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--bootstrap", required=True)
    from podium.cli import configure_logging

    configure_logging()
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    main()
