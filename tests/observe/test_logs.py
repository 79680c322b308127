"""Log lines name the workflow and task they are about: JSON off a terminal, text on one."""

from __future__ import annotations

import io
import logging

import orjson

from podium import logs


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _logger(stream: io.StringIO) -> logging.Logger:
    logger = logging.getLogger(f"podium.test.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logs.handler(stream))
    return logger


def test_json_lines_carry_the_ids_in_force() -> None:
    stream = io.StringIO()  # not a terminal
    logger = _logger(stream)
    logger.info("outside")
    with logs.context("wf-1", "charge"):
        logger.warning("card %s", "declined")
        with logs.context("wf-2"):
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
    outside, inside, nested = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert set(outside) == {"time", "level", "logger", "message"}
    assert outside["time"].endswith("Z") and outside["message"] == "outside"
    assert inside == {
        "time": inside["time"],
        "level": "WARNING",
        "logger": logger.name,
        "message": "card declined",
        "workflow_id": "wf-1",
        "task_id": "charge",
    }
    assert nested["workflow_id"] == "wf-2" and "task_id" not in nested
    assert "ValueError: boom" in nested["exception"]


def test_a_handler_s_own_ids_win_and_a_terminal_gets_text() -> None:
    stream = _Terminal()
    logger = _logger(stream)
    with logs.context("wf-1", "charge"):
        logging.LoggerAdapter(logger, {"workflow_id": "wf-9", "task_id": "ship"}).info("hello")
    logger.info("plain")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(f"INFO {logger.name}: hello [workflow wf-9 task ship]")
    assert second.endswith(f"INFO {logger.name}: plain")
