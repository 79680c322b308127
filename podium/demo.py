"""`make demo`: the shipped examples, run the way a user runs them.

One embedded broker for the one-shot runs; each step is a real `podium run`
command, printed before it runs, so it can be copied. The triggered saga
(examples/shop) needs a deployment, not a one-shot run: its conductor or tracker,
services and trigger gateway run as `podium` processes (their commands printed)
on a second embedded broker, and `examples.shop.outside` plays the outside world
with plain aiokafka. Each
`podium run` records its workflow in the history store (`./podium-history.db`);
the demo ends by listing them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from contextlib import ExitStack

from podium.broker import EmbeddedBroker
from podium.history.database import default_url

ORDER = ["examples/order/order.yaml", "--services", "examples.order.shop:services"]
ETL = ["examples/etl/etl.yaml", "--services", "examples.etl.pipeline:services"]

EXAMPLES = [
    ("the order saga: reserve stock, charge, ship", ORDER, {"sku": "A-1", "qty": 2, "amount": 30}),
    (
        "the order saga with an amount the bank declines for good: watch it compensate",
        ORDER,
        {"sku": "A-1", "qty": 2, "amount": 5000},
    ),
    (
        "the ETL pipeline: three parallel transforms, one retried twice, `enrich` skipped",
        ETL,
        {"source": "s3://bucket/2026-11-25"},
    ),
]
SHOP = "examples/shop"
#: the triggered saga's deployment per mode: (the command's arguments, what it does)
SHOP_PARTS = {
    "orchestration": [
        (["conductor"], "drives the saga and runs on_complete"),
        (["service", "examples.shop.shop:services"], "the task services"),
        (["triggers"], "starts the saga from shop.orders, completes its wait"),
    ],
    "choreography": [
        (["tracker"], "announces the ends and runs on_complete"),
        (["service", "examples.shop.shop:services"], "the task services"),
        (["triggers"], "starts the saga from shop.orders, completes its wait"),
    ],
}
#: seconds a part of the triggered saga's deployment may take to say it is ready
READY_WITHIN_S = 60.0

MODES = [
    ("orchestration", "a conductor sends commands to the services and drives the state machine"),
    ("choreography", "no conductor: each service reacts to the outcomes it waits for"),
]


def main() -> None:
    import orjson

    # the triggered saga's deployment gets a broker of its own: on the first one its
    # roles would read the one-shot runs' records and dead-letter them (unknown workflows)
    with EmbeddedBroker() as broker, EmbeddedBroker() as shop_broker:
        print(f"Embedded broker (tansu) on {broker.bootstrap_servers}\n")
        env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        shop_env = {**os.environ, "PODIUM_BOOTSTRAP_SERVERS": shop_broker.bootstrap_servers}
        for mode, how in MODES:
            print(f"######## {mode.upper()}: {how}\n")
            for title, target, payload in EXAMPLES:
                args = ["podium", "run", *target, "--input", orjson.dumps(payload).decode()]
                args += ["--mode", mode]
                print(f"== {mode}: {title}\n$ {shlex.join(args)}", flush=True)
                subprocess.run(
                    [sys.executable, "-m", "podium", *args[1:]],
                    env={**env, "PODIUM_LOG_LEVEL": "WARNING"},
                    check=False,
                )
                print(flush=True)
            shop(mode, shop_env)
    history = os.environ.get("PODIUM_HISTORY_URL") or default_url()
    print(f"######## HISTORY: every run above was recorded in {history}\n")
    print("$ podium list", flush=True)
    subprocess.run([sys.executable, "-m", "podium", "list", "--limit", "6"], check=False)
    print(
        "\nThen `podium status ID` (the result a run printed) and `podium history ID` (its\n"
        "transitions, with times) for any of those ids.\n"
    )
    print(
        "Next: add --json for the machine-readable result; run the pieces yourself with\n"
        "`podium broker`, `podium service [--mode choreography]`, `podium conductor` or\n"
        "`podium tracker`, `podium history-store`, and `podium trigger NAME --wait`; the\n"
        "definitions are in examples/*/*.yaml and their services beside them (README.md\n"
        "walks through it)."
    )
    # the last line: the one command that shows these runs in the browser
    print("\nOpen the dashboard on these workflows: podium api  (then http://127.0.0.1:8000/)")


class _Part:
    """A long-running `podium` command whose stderr is echoed (but for its `podium:
    ready` line); stopped with SIGTERM, so it drains, on the way out."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.name = args[0]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "podium", *args], env=env, stderr=subprocess.PIPE, text=True
        )
        self._ready = threading.Event()
        # read to the end, so a chatty process never blocks on a full pipe
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "podium: ready" in line:
                self._ready.set()
            else:
                print(f"   [{self.name}] {line}", end="", file=sys.stderr)
        self._ready.set()  # it ended: whoever waits is woken, and sees it

    def wait_ready(self) -> None:
        if not self._ready.wait(READY_WITHIN_S):
            raise RuntimeError(f"podium {self.name} not ready within {READY_WITHIN_S:.0f}s")
        if self.process.poll() is not None:
            raise RuntimeError(f"podium {self.name} ended before it was ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join()
        assert self.process.stderr is not None
        self.process.stderr.close()


def shop(mode: str, env: dict[str, str]) -> int:
    """The triggered saga: a deployment of `mode` as processes, then the outside world
    (its exit status: 0 once every result it waits for came back)."""
    print(
        f"== {mode}: the triggered saga (examples/shop): an order on shop.orders starts it,\n"
        "   an approval on shop.approvals releases its wait, its end starts shipping and\n"
        "   is published on shop.order_results; the deployment, as processes (on a broker\n"
        f"   of its own, {env['PODIUM_BOOTSTRAP_SERVERS']}):"
    )
    env = {**env, "PODIUM_DEFINITIONS": SHOP, "PODIUM_MODE": mode}
    env["PODIUM_LOG_LEVEL"] = "WARNING"
    # a consumer group's join waits about half the session timeout (DESIGN.md): the
    # demo's processes join faster with 3 s than with the default 6 s
    env["PODIUM_CONSUMER__SESSION_TIMEOUT_MS"] = "3000"
    env["PODIUM_CONSUMER__HEARTBEAT_INTERVAL_MS"] = "500"
    with ExitStack() as stack:
        started = []
        for args, what in SHOP_PARTS[mode]:
            shown = ["podium", *args, "--definitions", SHOP]
            if args[0] in {"service", "triggers"}:
                shown += ["--mode", mode]
            print(f"$ {shlex.join(shown)} &    # {what}", flush=True)
            part = _Part(args, env)
            stack.callback(part.stop)
            started.append(part)
        for part in started:
            part.wait_ready()
        outside = ["python", "-m", "examples.shop.outside", "--tag", mode[:5]]
        print(f"$ {shlex.join(outside)}    # the outside world: plain aiokafka", flush=True)
        code = subprocess.run([sys.executable, *outside[1:]], env=env, check=False).returncode
    print(flush=True)
    return code


if __name__ == "__main__":
    main()
