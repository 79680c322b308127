"""The shop's task services for the triggered order saga: the order example's own.

The saga's `approve` task needs none: the trigger gateway completes it.
"""

from examples.order.shop import inventory, payments, shipping

services = [inventory, payments, shipping]
