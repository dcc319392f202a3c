"""Workflows started through nginx on any replica run exactly once (DBOS over PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.cluster.support import access_log_lines, issue_key, live_server, replica_names
from tests.helpers import auth
from tests.system_runtime.durability_support import (
    RUN_SCOPES,
    EffectLedger,
    chain_definition,
    dbos_workflows,
    ledger_key,
    wait_for_statuses,
)

pytestmark = pytest.mark.cluster

RUNS = 45
STEPS = ("fetch", "transform", "publish")
STALL_SECONDS = 60.0
DEFINITION = "cluster-chain"


def test_runs_started_round_robin_through_nginx_execute_each_step_once(
    cluster: Any, ledger: EffectLedger
) -> None:
    _key_id, secret = issue_key(cluster, RUN_SCOPES, name="workflow test")
    stored = httpx.post(
        cluster.proxy_url + "/system-runtime/api/workflow-definitions",
        json=chain_definition(DEFINITION, STEPS, {}),
        headers=auth(secret),
        timeout=30,
    )
    assert stored.status_code == HTTPStatus.CREATED, stored.text
    batch = uuid.uuid4().hex[:12]

    def start(index: int) -> str:
        answer = httpx.post(
            cluster.proxy_url + "/system-runtime/api/workflows/start",
            json={"definition": DEFINITION},
            headers=auth(secret) | {"X-Request-ID": f"cluster-run-{batch}-{index}"},
            timeout=30,
        )
        assert answer.status_code == HTTPStatus.ACCEPTED, answer.text
        return str(answer.json()["id"])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        run_ids = list(pool.map(start, range(RUNS)))
    statuses = wait_for_statuses(
        live_server(cluster.replicas[0]), run_ids, stall_seconds=STALL_SECONDS
    )
    elapsed = time.monotonic() - started
    workflows = dbos_workflows(live_server(cluster.replicas[0]), run_ids)

    names = replica_names(cluster)
    accepted_by = Counter(
        names.get(line["upstream"], line["upstream"])
        for line in access_log_lines(cluster)
        if line["request_id"].startswith(f"cluster-run-{batch}-")
    )
    executed_by = Counter(workflow["executor_id"] for workflow in workflows.values())
    calls = Counter(ledger.calls[ledger_key(run_id, step)] for run_id in run_ids for step in STEPS)
    effects = Counter(
        ledger.effects[ledger_key(run_id, step)] for run_id in run_ids for step in STEPS
    )
    print(  # noqa: T201
        f"\n{RUNS} runs of {len(STEPS)} steps started via nginx, all ended in {elapsed:.1f} s; "
        f"statuses {dict(statuses)}\n  started on {dict(sorted(accepted_by.items()))}; "
        f"executed by {dict(sorted(executed_by.items()))}\n"
        f"  step calls per step {dict(calls)}; effects per step {dict(effects)}"
    )

    assert len(set(run_ids)) == RUNS
    assert statuses == {"succeeded": RUNS}
    # Starts were spread over every replica by the proxy.
    assert set(accepted_by) == {replica.name for replica in cluster.replicas}, accepted_by
    assert sum(accepted_by.values()) == RUNS
    # Each step of each run: one call at the receiving service, one effect.
    assert calls == {1: RUNS * len(STEPS)}
    assert effects == {1: RUNS * len(STEPS)}
    # DBOS's own record: each workflow succeeded, was dequeued once, by a replica.
    assert Counter(w["status"] for w in workflows.values()) == {"SUCCESS": RUNS}
    assert Counter(w["recovery_attempts"] for w in workflows.values()) == {1: RUNS}
    assert set(executed_by) <= {replica.name for replica in cluster.replicas}
