"""The Python half of the polyglot order: inventory and shipping; payments is service.js.

podium service examples.polyglot.shop:services --definitions examples/polyglot/order.yaml
"""

from podium import TaskError, TaskService

inventory = TaskService("inventory")
shipping = TaskService("shipping")


@inventory.task("inventory.reserve")
async def reserve(input: dict, ctx) -> dict:
    if input["qty"] > 10:
        raise TaskError("not enough stock", retryable=False)
    return {"reservation_id": f"r-{ctx.workflow_id}"}


@inventory.task("inventory.release")
async def release(input: dict, ctx) -> dict:
    return {"released": input["reservation_id"]}


@shipping.task("shipping.ship")
async def ship(input: dict, ctx) -> dict:
    return {"tracking": f"t-{ctx.workflow_id}"}


services = [inventory, shipping]
