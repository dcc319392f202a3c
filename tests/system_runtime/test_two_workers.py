"""Issue 12 acceptance, two workers: two replicas on one PostgreSQL database share a queue.

Two real ``xynergy serve`` processes (distinct executor ids and ports, one
database) take 500 one-step runs started through either of them. Each run's
step is called exactly once at the receiving service, DBOS records each
workflow as executed once (succeeded, dequeued once), and both replicas
executed a real share of the runs (DBOS records which executor dequeued each).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.system_runtime.durability_support import (
    RUN_SCOPES,
    chain_definition,
    dbos_workflows,
    effect_ledger,
    entered_together,
    ledger_key,
    runtime_server,
    start_runs,
    store_definition,
    wait_for_statuses,
)

pytestmark = [pytest.mark.durability, pytest.mark.postgres]

# The issue's figure; XYNERGY_TEST_TWO_WORKERS_RUNS=100 for a quicker look on a busy box.
RUNS = int(os.environ.get("XYNERGY_TEST_TWO_WORKERS_RUNS", "500"))
EXECUTORS = ("worker-a", "worker-b")
TENANT = "two-workers-co"
DEFINITION = "one-step"
# Fails when no run ends for this long: a bound on a stall, not on the box's speed.
STALL_SECONDS = 30.0
# Each replica must have executed more than this share of the runs.
MIN_SHARE = 0.10
# One tenant's runs: its partition bound must not be what serialises the test.
ENGINE = {
    "XYNERGY_RUNTIME_TENANT_CONCURRENCY": "64",
    "XYNERGY_RUNTIME_WORKER_CONCURRENCY": "16",
}


class TestTwoWorkersShareAQueue:
    def test_each_run_executes_once_and_both_take_a_share(
        self, pg_database_url: str, tmp_path: Path
    ) -> None:
        with effect_ledger() as ledger:
            replicas = [
                runtime_server(
                    ledger,
                    data_dir=tmp_path / executor,
                    database_url=pg_database_url,
                    executor_id=executor,
                    **ENGINE,
                )
                for executor in EXECUTORS
            ]
            # Both start at once: a start takes seconds of imports each.
            with entered_together(replicas) as servers:
                store_definition(servers[0], TENANT, chain_definition(DEFINITION, ["only"], {}))
                secret = servers[0].issue_key(tenant=TENANT, scopes=RUN_SCOPES)
                started = time.monotonic()
                run_ids = start_runs(servers, secret, DEFINITION, RUNS, parallel=16)
                statuses = wait_for_statuses(servers[1], run_ids, stall_seconds=STALL_SECONDS)
                elapsed = time.monotonic() - started
            workflows = dbos_workflows(servers[0], run_ids)

        print(f"\n{RUNS} runs started and finished in {elapsed:.1f} s")  # noqa: T201
        assert len(set(run_ids)) == RUNS
        assert statuses == {"succeeded": RUNS}
        # Executed exactly once: one call per run at the receiving service, one effect.
        calls = [ledger.calls[ledger_key(run_id, "only")] for run_id in run_ids]
        assert Counter(calls) == {1: RUNS}
        assert sum(ledger.effects.values()) == RUNS
        # DBOS's record: every workflow succeeded, dequeued once, by one of the two.
        assert Counter(workflow["status"] for workflow in workflows.values()) == {"SUCCESS": RUNS}
        assert Counter(workflow["recovery_attempts"] for workflow in workflows.values()) == {
            1: RUNS
        }
        shares = Counter(workflow["executor_id"] for workflow in workflows.values())
        print(f"runs per executor: {dict(shares)}")  # noqa: T201
        assert set(shares) <= set(EXECUTORS)
        for executor in EXECUTORS:
            assert shares[executor] > RUNS * MIN_SHARE, shares
