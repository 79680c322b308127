"""The order saga's task services: inventory, payments, shipping.

Run it:  podium run examples/order/order.yaml --services examples.order.shop:services \
             --input '{"sku": "A-1", "qty": 2, "amount": 30}'
An amount over 1000 is declined for good: the saga compensates (release stock).
"""

from __future__ import annotations

from podium import TaskError, TaskService

inventory = TaskService("inventory")
payments = TaskService("payments")
shipping = TaskService("shipping")


@inventory.task("inventory.reserve")
async def reserve(input: dict, ctx) -> dict:
    if input["qty"] > 10:
        raise TaskError("not enough stock", retryable=False)
    return {"reservation_id": f"r-{ctx.workflow_id}"}


@inventory.task("inventory.release")
async def release(input: dict, ctx) -> dict:
    ctx.logger.info("released %s", input["reservation_id"])
    return {"released": input["reservation_id"]}


@payments.task("payments.charge")
async def charge(input: dict, ctx) -> dict:
    if input["amount"] > 1000:
        raise TaskError("card declined: amount over the limit", retryable=False)
    return {"charge_id": f"c-{ctx.workflow_id}", "amount": input["amount"]}


@payments.task("payments.refund")
def refund(input: dict, ctx) -> dict:  # a plain function runs in a thread pool
    return {"refunded": input["charge_id"]}


@shipping.task("shipping.ship")
async def ship(input: dict, ctx) -> dict:
    return {"tracking": f"t-{ctx.workflow_id}"}


services = [inventory, payments, shipping]
