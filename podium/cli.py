"""The `podium` command line: thin commands over the runtimes.

Logs go to stderr, results to stdout. Exit codes: 0 success, 1 a workflow that
ended otherwise than Succeeded (or a runtime failure), 2 a usage or validation
error.
"""

from __future__ import annotations

import logging
import signal
import sys

import typer

from podium.broker import EmbeddedBroker

app = typer.Typer(
    name="podium",
    help="Event-driven workflows over Kafka: orchestration or choreography, one definition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Event-driven workflows over Kafka: orchestration or choreography, one definition."""


@app.command()
def broker(
    port: int = typer.Option(9092, "--port", min=1, max=65535, help="Loopback port to listen on."),
) -> None:
    """Run the embedded Kafka-compatible broker (tansu, memory storage) until interrupted."""
    embedded = EmbeddedBroker(port)
    embedded.start()
    print(embedded.bootstrap_servers, flush=True)
    print(
        f"podium: embedded broker listening on {embedded.bootstrap_servers}; Ctrl-C stops it",
        file=sys.stderr,
    )

    def stop(signum: int, frame: object) -> None:
        embedded.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    embedded.wait()
    embedded.stop()


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def main() -> None:
    app()
