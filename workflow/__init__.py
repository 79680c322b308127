"""Podium's pure workflow core: definitions, validation, expressions, the state machine.

Why a package of its own, rather than a part of ``events/`` or ``conductor/``:
the conductor (orchestration), every task service (choreography joins) and the
passive tracker all run this same code, and the import arrows must point one
way — ``conductor`` and ``services`` may import it, it imports neither, nor
any Kafka client. It is the domain, not the wire: ``events/`` encodes what
crosses Kafka, ``workflow/`` decides what it means. Keeping it apart also keeps
it honest: no I/O, no clock, no uuid, no randomness at import or at run time —
time, ids and seeds are passed in — so it is unit-tested and replayed without a
broker (``tests/core``, ``tests/golden``).

Modules, one noun each:

- ``durations``    ``250ms`` / ``5s`` / ``2m`` / ``1h`` -> seconds
- ``expressions``  CEL expressions and ``${ }`` templates
- ``definition``   the pydantic model of a workflow definition and its compiled plan
- ``validation``   ``Problem``, ``DefinitionError`` and the whole-graph checks
- ``loader``       YAML/JSON files -> definitions, every problem at once
- ``builder``      the Python builder (``Workflow``, ``Task``)
- ``states``       ``TaskStatus``, ``WorkflowStatus``
- ``messages``     the events the machine takes, the commands it returns, the ``Step``
- ``state``        a workflow's state, made through named constructors that check it
- ``ids``          every command, idempotency and timer id, and the retry jitter's salt
- ``choreography`` one task's join rule, shared by both modes
- ``join``         one choreography participant's view of a workflow
- ``machine``      ``decide(definition, state, event, now) -> (state, commands)``

Importing this package imports only the definition layer; import ``machine``,
``loader`` or ``choreography`` for the rest.
"""

from podium.workflow.definition import Compensation, Definition, RetryPolicy, TaskSpec
from podium.workflow.durations import parse_duration
from podium.workflow.states import TaskStatus, WorkflowStatus
from podium.workflow.validation import DefinitionError, Problem

__all__ = [
    "Compensation",
    "Definition",
    "DefinitionError",
    "Problem",
    "RetryPolicy",
    "TaskSpec",
    "TaskStatus",
    "WorkflowStatus",
    "parse_duration",
]
