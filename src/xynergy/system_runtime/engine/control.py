"""What the API asks of DBOS: enqueue a run, fork it from a step, cancel it, signal it.

Thin on purpose: DBOS owns queues, recovery and forks; these only name the
queue, the tenant's partition and the workflow id the run's row points at.
"""

from __future__ import annotations

import json
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from xynergy.system_runtime.engine.host import RUNS_QUEUE
from xynergy.system_runtime.engine.workflow import approval_topic, execute_run, stop_waiting

__all__ = ["cancel", "enqueue", "fork", "signal", "stop_cancelled", "workflow_exists"]


async def enqueue(
    run_id: str, *, workflow_id: str, tenant_id: str, start: dict[str, Any] | None = None
) -> None:
    """Queue the run in its tenant's partition (each partition runs at most
    ``tenant_concurrency`` at once). Enqueuing an id twice keeps the first.

    ``start`` (engine/plan.start_arguments) only once the run's rows committed: the
    run then trusts it instead of reading them.
    """
    with SetWorkflowID(workflow_id), SetEnqueueOptions(queue_partition_key=tenant_id):
        if start is None:
            await DBOS.enqueue_workflow_async(RUNS_QUEUE, execute_run, run_id)
        else:
            await DBOS.enqueue_workflow_async(RUNS_QUEUE, execute_run, run_id, start)


async def fork(workflow_id: str, *, start_step: int, tenant_id: str, new_workflow_id: str) -> None:
    """Queue ``new_workflow_id``, replaying ``workflow_id``'s recorded steps before
    ``start_step``. The caller names it, so the run's row can name it first."""
    with SetWorkflowID(new_workflow_id):
        await DBOS.fork_workflow_async(
            workflow_id, start_step, queue_name=RUNS_QUEUE, queue_partition_key=tenant_id
        )


async def cancel(workflow_id: str) -> None:
    await DBOS.cancel_workflow_async(workflow_id)


def stop_cancelled(workflow_id: str) -> None:
    """After the cancel is recorded: end the run's approvals and waits in this process."""
    stop_waiting(workflow_id)


async def signal(workflow_id: str, step_id: str, message: dict[str, Any]) -> None:
    # DBOS pickles the message: only plain JSON values may cross, never the request's
    # str subclasses (the platform's sanitised text does not unpickle).
    plain = json.loads(json.dumps(message))
    await DBOS.send_async(workflow_id, plain, topic=approval_topic(step_id))


async def workflow_exists(workflow_id: str) -> bool:
    return await DBOS.get_workflow_status_async(workflow_id) is not None
