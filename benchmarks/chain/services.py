"""Task services of the benchmark chain: one per step, each adds one to `n`.

podium service benchmarks.chain.services:s1 --definitions benchmarks/chain/chain.yaml
podium service benchmarks.chain.services:services ...    # all five in one process
"""

from __future__ import annotations

from podium import TaskService

s1 = TaskService("bench-s1")
s2 = TaskService("bench-s2")
s3 = TaskService("bench-s3")
s4 = TaskService("bench-s4")
s5 = TaskService("bench-s5")


async def step(input: dict, ctx) -> dict:
    return {"n": input["n"] + 1}


for number, service in enumerate((s1, s2, s3, s4, s5), start=1):
    service.add(f"bench.s{number}", step)

services = [s1, s2, s3, s4, s5]
#: attribute names, one service each (`benchmarks.chain.services:<name>`)
NAMES = ("s1", "s2", "s3", "s4", "s5")
