"""Task services of the benchmark fan-out (1 -> 10 -> 1): one per task type.

`split` passes `n` on, each of the ten `work` tasks adds one, `join` sums the ten:
the workflow's output is `total = 10 * (n + 1)`.

podium service benchmarks.fanout.services:split --definitions benchmarks/fanout
"""

from __future__ import annotations

from podium import TaskService

split = TaskService("bench-fan-split")
work = TaskService("bench-fan-work")
join = TaskService("bench-fan-join")


@split.task("bench.fan.split")
async def do_split(input: dict, ctx) -> dict:
    return {"n": input["n"]}


@work.task("bench.fan.work")
async def do_work(input: dict, ctx) -> dict:
    return {"n": input["n"] + 1}


@join.task("bench.fan.join")
async def do_join(input: dict, ctx) -> dict:
    return {"total": sum(input["values"])}


services = [split, work, join]
#: attribute names, one service each (`benchmarks.fanout.services:<name>`)
NAMES = ("split", "work", "join")
