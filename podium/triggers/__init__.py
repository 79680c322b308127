"""The trigger gateway: the outside world turned into Podium's own events.

- ``records``   a consumed record as CEL's ``event``
- ``bindings``  event bindings: a matching record starts a workflow (``Binder``)
- ``schedules`` cron schedules, one start per tick (``Scheduler``)
- ``gateway``   both, as one component (``podium triggers``)
"""
