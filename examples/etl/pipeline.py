"""The ETL pipeline's task services.

Run it:  podium run examples/etl/etl.yaml --services examples.etl.pipeline:services \
             --input '{"source": "s3://bucket/2026-11-25"}'
Transform "b" fails transiently on its first two attempts and succeeds on the
third (the definition retries it); `enrich` runs only with `"enrich": true`.
"""

from __future__ import annotations

from podium import TaskService

etl = TaskService("etl")


@etl.task("etl.extract")
async def extract(input: dict, ctx) -> dict:
    return {"rows": [{"id": i, "source": input["source"]} for i in range(3)]}


@etl.task("etl.transform")
async def transform(input: dict, ctx) -> dict:
    if input["kind"] == "b" and ctx.attempt < 3:
        raise ConnectionError(f"transform b: upstream flaked (attempt {ctx.attempt})")
    return {"kind": input["kind"], "rows": [{**row, input["kind"]: True} for row in input["rows"]]}


@etl.task("etl.enrich")
def enrich(input: dict, ctx) -> dict:
    return {"rows": [{**row, "enriched": True} for row in input["rows"]]}


@etl.task("etl.join")
async def join(input: dict, ctx) -> dict:
    merged: dict[int, dict] = {}
    for part in input["parts"]:
        for row in part["rows"]:
            merged.setdefault(row["id"], {}).update(row)
    if input.get("enriched"):
        for row in input["enriched"]["rows"]:
            merged[row["id"]].update(row)
    return {"rows": [merged[k] for k in sorted(merged)]}


@etl.task("etl.load")
async def load(input: dict, ctx) -> dict:
    return {"loaded": len(input["rows"]), "into": f"warehouse:{input['source']}"}


services = [etl]
