"""Fault: a replica killed with SIGKILL mid-workflow; another replica completes the run.

A run of four steps, each recording one side effect at the test's receiving
service (the session's ``EffectLedger``), is started through nginx. Once its
second step is in flight, the replica executing it (DBOS's ``executor_id``) is
killed with SIGKILL. The survivors' takeover sweep (heartbeats in PostgreSQL;
one taker per silent executor, by row lock) notices the silence after the grace
period and one of them recovers the run at its first unfinished step: step 1 is
not called again, step 2 is called again with the same Idempotency-Key (the
ledger answers its stored result), and every side effect exists once. The killed
replica is then started again with its executor id and executes nothing again,
so the later tests have three replicas.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.support import issue_key, live_server, tool
from tests.helpers import auth
from tests.system_runtime.durability_support import (
    RUN_SCOPES,
    EffectLedger,
    chain_definition,
    dbos_workflows,
    ledger_key,
    wait_for_run,
)
from xynergy.system_runtime.config import RuntimeSettings

pytestmark = pytest.mark.cluster

DEFINITION = "cluster-kill-chain"
STEPS = ("kill_1", "kill_2", "kill_3", "kill_4")
# Step 2 is held at the ledger so the kill lands while it is in flight.
HOLDS = {"kill_2": 3.0}
ARRIVAL_TIMEOUT_SECONDS = 60.0
_RUNTIME = RuntimeSettings()
# Takeover comes grace to grace + heartbeat after the last heartbeat; slack for 2 busy cores.
TAKEOVER_BOUND_SECONDS = (
    _RUNTIME.takeover_grace_seconds + _RUNTIME.takeover_heartbeat_seconds + 30.0
)
RETURN_OBSERVATION_SECONDS = 3.0


def _per_step(counter: Counter[str], run_id: str) -> dict[str, int]:
    """Calls or effects per step of ``run_id``, whatever Idempotency-Key each carried."""
    return {
        label: sum(n for key, n in counter.items() if key.startswith(ledger_key(run_id, label)))
        for label in STEPS
    }


def _seconds_until(condition: Any, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_a_run_of_a_killed_replica_is_completed_elsewhere_each_step_once(
    cluster: Any, ledger: EffectLedger
) -> None:
    _key_id, secret = issue_key(cluster, RUN_SCOPES, name="replica kill test")
    stored = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflow-definitions",
        json=chain_definition(DEFINITION, STEPS, HOLDS),
        headers=auth(secret),
        timeout=30,
    )
    assert stored.status_code == HTTPStatus.CREATED, stored.text
    answer = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflows/start",
        json={"definition": DEFINITION},
        headers=auth(secret),
        timeout=30,
    )
    assert answer.status_code == HTTPStatus.ACCEPTED, answer.text
    run_id = str(answer.json()["id"])
    assert ledger.arrival("kill_2").wait(ARRIVAL_TIMEOUT_SECONDS), "step 2 never started"

    by_name = {replica.name: replica for replica in cluster.replicas}
    owner_name = dbos_workflows(live_server(cluster.replicas[0]), [run_id])[run_id]["executor_id"]
    owner = by_name[owner_name]
    survivors = [replica for replica in cluster.replicas if replica.name != owner_name]
    calls_at_kill = _per_step(ledger.calls, run_id)
    os.kill(owner.pid, signal.SIGKILL)
    owner.process.wait(timeout=10)
    killed_at = time.monotonic()

    taken_after = _seconds_until(
        lambda: _per_step(ledger.calls, run_id)["kill_2"] >= 2, TAKEOVER_BOUND_SECONDS
    )
    final = wait_for_run(live_server(survivors[0]), secret, run_id, timeout=60)
    completed_after = time.monotonic() - killed_at
    workflow = dbos_workflows(live_server(survivors[0]), [run_id])[run_id]

    # The killed replica comes back (same executor id): it recovers nothing of this run.
    returned = tool("cluster").restart_replica(cluster, owner)
    calls_before_return = _per_step(ledger.calls, run_id)
    time.sleep(RETURN_OBSERVATION_SECONDS)
    calls_after_return = _per_step(ledger.calls, run_id)
    effects = _per_step(ledger.effects, run_id)

    print(  # noqa: T201
        f"\nrun {run_id} on {owner_name}, SIGKILLed with step 2 in flight "
        f"(calls then {calls_at_kill}); taken over after {taken_after} s "
        f"(grace {_RUNTIME.takeover_grace_seconds} s, heartbeat "
        f"{_RUNTIME.takeover_heartbeat_seconds} s), completed {completed_after:.1f} s after "
        f"the kill by {workflow['executor_id']} ({final['status']})\n"
        f"  step calls {calls_after_return}; side effects {effects}; "
        f"{owner_name} restarted as pid {returned.pid}"
    )
    assert calls_at_kill == {"kill_1": 1, "kill_2": 1, "kill_3": 0, "kill_4": 0}
    assert taken_after is not None, "no replica took the run over"
    assert final["status"] == "succeeded", final
    assert [step["status"] for step in final["steps"]] == ["succeeded"] * len(STEPS)
    # Finished by a survivor, DBOS's record says.
    assert workflow["status"] == "SUCCESS"
    assert workflow["executor_id"] in {replica.name for replica in survivors}
    # Step 1 was not repeated; step 2 was called again with its key; one effect each.
    assert calls_after_return["kill_1"] == 1
    assert calls_after_return["kill_2"] >= 2
    assert calls_after_return["kill_3"] == calls_after_return["kill_4"] == 1
    assert effects == dict.fromkeys(STEPS, 1)
    assert calls_after_return == calls_before_return
    assert len(cluster.replicas) == 3
    assert all(replica.process.poll() is None for replica in cluster.replicas)
