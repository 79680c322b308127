"""The definition's triggers, wait_for and on_complete: parsed, validated, scheduled."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from podium.workflow.loader import check_definition, parse_definition, validate_files
from podium.workflow.triggers import WAIT_TYPE, Trigger, due_ticks, next_ticks, schedule_id

BASE: dict[str, Any] = {"name": "order", "tasks": [{"id": "reserve", "type": "inventory.reserve"}]}


def definition(**extra: Any) -> dict[str, Any]:
    return {**BASE, **extra}


def problems(data: dict[str, Any]) -> list[str]:
    _, found = check_definition(data, "order.yaml")
    return [str(problem) for problem in found if problem.severity == "error"]


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_three_sections_parse() -> None:
    parsed = parse_definition(
        definition(
            triggers=[
                {"cron": "*/5 * * * *", "timezone": "Europe/Berlin", "input": {"region": "eu"}},
                {
                    "event": {
                        "topic": "shop.orders",
                        "filter": 'event.data.total > 0 && event.type == "order.created"',
                        "input": {"sku": "${ event.data.sku }"},
                        "id": "${ event.data.order_id }",
                    }
                },
            ],
            tasks=[
                *BASE["tasks"],
                {
                    "id": "approve",
                    "depends_on": "reserve",
                    "timeout": "24h",
                    "wait_for": {
                        "topic": "shop.approvals",
                        "match": "event.data.order_id == workflow.input.order_id",
                        "output": {"approved": "${ event.data.ok }"},
                    },
                },
            ],
            on_complete=[
                {
                    "when": 'workflow.state == "Succeeded" && tasks.reserve.state == "Succeeded"',
                    "start": {"workflow": "ship", "input": {"order": "${ workflow.output }"}},
                },
                {"publish": {"topic": "shop.order_results"}},
            ],
        )
    )
    assert parsed.task("approve").type == WAIT_TYPE
    assert parsed.waits
    assert [t.cron is not None for t in parsed.triggers] == [True, False]
    assert parsed.triggers[0].missed == "skip"
    assert parsed.on_complete[1].publish is not None


def test_an_existing_definition_dumps_as_before() -> None:
    dumped = parse_definition(definition()).model_dump(mode="json")
    assert "triggers" not in dumped and "on_complete" not in dumped
    assert "wait_for" not in dumped["tasks"][0]


def test_every_problem_at_once() -> None:
    found = problems(
        definition(
            triggers=[
                {"cron": "*/5 * * * * *", "timezone": "Europe/Berlinn"},
                {"event": {"topic": "shop.orders", "filter": "event.data.total >"}},
                {"event": {"topic": "podium.triggers", "input": {"x": "${ workflow.id }"}}},
                {"cron": "61 * * * *"},
                {"event": {"topic": "shop.orders"}, "missed": "run_once"},
                {},
            ],
            tasks=[
                *BASE["tasks"],
                {"id": "approve", "wait_for": {"topic": "a", "match": "tasks.reserve.output"}},
                {"id": "typed", "type": "x", "wait_for": {"topic": "a", "match": "true"}},
                {"id": "fed", "input": {"x": 1}, "wait_for": {"topic": "a", "match": "true"}},
            ],
            on_complete=[
                {"publish": {"topic": "x"}, "start": {"workflow": "ship"}},
                {"when": "event.x", "publish": {"topic": "x"}},
            ],
        )
    )
    expected = [
        "triggers.0.cron: invalid cron '*/5 * * * * *': use the standard five fields",
        "triggers.0.timezone: unknown time zone 'Europe/Berlinn'",
        "triggers.1.event.filter: expression 'event.data.total >' does not compile",
        "triggers.2.event.topic: topic 'podium.triggers' is one of Podium's own",
        "triggers.2.event.input: 'workflow.id' uses unknown variable 'workflow' (use event)",
        "triggers.3.cron: invalid cron '61 * * * *'",
        "triggers.4: missed: only for a 'cron' trigger",
        "triggers.5: a trigger has either 'cron' or 'event'",
        "task 'approve': wait_for.match: expression 'tasks.reserve.output' uses unknown variable 'tasks'",
        "task 'typed': a wait_for task has no type",
        "task 'fed': a wait_for task takes no input",
        "on_complete.0: an on_complete entry has either 'start' or 'publish'",
        "on_complete.1.when: expression 'event.x' uses unknown variable 'event'",
    ]
    for text in expected:
        assert any(text in line for line in found), (text, found)
    assert all(line.startswith("order.yaml: ") for line in found)


def test_on_complete_refers_to_known_tasks() -> None:
    found = problems(
        definition(on_complete=[{"when": "tasks.nope.state == 'x'", "publish": {"topic": "t"}}])
    )
    assert any("on_complete[0]: expression refers to unknown task 'nope'" in line for line in found)


def cron(expr: str, **extra: Any) -> Trigger:
    return Trigger(cron=expr, **extra)


def test_an_unknown_on_complete_target_is_reported_with_the_files_validated(
    tmp_path: Path,
) -> None:
    hand_on = definition(
        on_complete=[
            {"publish": {"topic": "t"}},
            {"start": {"workflow": "ship"}},
            {"start": {"workflow": "ship", "version": 2}},
        ]
    )
    (tmp_path / "order.json").write_bytes(orjson.dumps(hand_on))
    _, alone = validate_files([tmp_path / "order.json"])
    assert [str(p) for p in alone] == [
        f"{tmp_path / 'order.json'}: on_complete[{i}].start: unknown workflow {what!r} (the "
        "definitions validated with it: order; give its file or the whole directory)"
        for i, what in [(1, "ship"), (2, "ship v2")]
    ]
    ship = {"name": "ship", "tasks": [{"id": "go", "type": "shipping.ship"}]}
    (tmp_path / "ship.json").write_bytes(orjson.dumps(ship))
    _, together = validate_files([tmp_path])
    assert [p.message for p in together] == [
        "on_complete[2].start: unknown workflow 'ship v2' (the definitions validated with it: "
        "order, ship; give its file or the whole directory)"
    ]


def test_next_ticks_in_a_time_zone_across_dst() -> None:
    # Europe/Berlin springs forward at 02:00 on 2026-03-29: 01:00 UTC is 03:00 CEST
    hourly = cron("30 * * * *", timezone="Europe/Berlin")
    ticks = next_ticks(hourly, at("2026-03-29T00:00:00+01:00"), 4)
    utc = [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in ticks]
    assert utc == ["23:30", "00:30", "01:30", "02:30"]  # every real hour once, none twice
    daily = cron("30 2 * * *", timezone="Europe/Berlin")
    local = [
        datetime.fromtimestamp(t, UTC).astimezone(hourly_zone()).isoformat()
        for t in next_ticks(daily, at("2026-03-28T00:00:00+01:00"), 3)
    ]
    assert local[0] == "2026-03-28T02:30:00+01:00"
    assert local[2] == "2026-03-30T02:30:00+02:00"
    # autumn: 02:30 happens twice on 2026-10-25; each real instant is its own tick
    autumn = next_ticks(hourly, at("2026-10-25T01:00:00+02:00"), 3)
    assert [b - a for a, b in itertools.pairwise(autumn)] == [3600.0, 3600.0]


def hourly_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


def test_due_ticks_fire_on_time_and_follow_the_missed_policy() -> None:
    every5 = cron("*/5 * * * *")
    last = at("2026-01-01T10:00:00+00:00")
    assert due_ticks(every5, last, last + 299) == ([], last)
    due, handled = due_ticks(every5, last, last + 301)
    assert due == [last + 300] and handled == last + 300
    # a restart 40 s late still fires the tick (within the grace)
    assert due_ticks(every5, last, last + 340)[0] == [last + 300]
    # down for an hour: skip drops the missed ticks, run_once fires the latest once
    later = last + 3600 + 100
    assert due_ticks(every5, last, later) == ([], last + 3600)
    catch_up = cron("*/5 * * * *", missed="run_once")
    assert due_ticks(catch_up, last, later) == ([last + 3600], last + 3600)
    # after it, nothing is due again at the same time
    assert due_ticks(catch_up, last + 3600, later) == ([], last + 3600)


def test_a_schedule_id_names_the_tick() -> None:
    assert schedule_id("nightly", 0, at("2026-03-29T01:00:00+00:00")) == (
        "nightly:cron:0:2026-03-29T01:00:00Z"
    )


@pytest.mark.parametrize("expr", ["@daily", "* * *", "0 0 30 2 * 1"])
def test_cron_forms_refused(expr: str) -> None:
    assert problems(definition(triggers=[{"cron": expr}]))
