"""Issue 12 acceptance, crash test: SIGKILL in the middle of step 3 of a five-step run.

A real ``xynergy serve`` runs a chain of five steps, each recording a side
effect at the test's receiving service (``durability_support.EffectLedger``).
Step 3's call is held there; while it is in flight the server is killed with
SIGKILL, then started again on the same database with the same executor id.
DBOS recovers the run at launch: it completes, steps 1-2 are not called again
(their recorded outputs are replayed), step 3 is called again with the same
idempotency key and the receiving service performs its side effect once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.system_runtime.durability_support import (
    RUN_SCOPES,
    chain_definition,
    effect_ledger,
    ledger_key,
    runtime_server,
    start_runs,
    store_definition,
    wait_for_run,
)

pytestmark = pytest.mark.durability

STEPS = ("s1", "s2", "s3", "s4", "s5")
HOLD_SECONDS = 2.0
ARRIVAL_TIMEOUT_SECONDS = 30.0
RECOVERY_TIMEOUT_SECONDS = 60.0
TENANT = "crash-co"
DEFINITION = "five-steps"


class TestCrashInStepThree:
    def test_the_run_completes_after_a_restart_with_each_side_effect_once(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with effect_ledger() as ledger:
            data_dir = tmp_path / "server"
            with runtime_server(ledger, data_dir=data_dir, database_url=database_url) as first:
                store_definition(
                    first, TENANT, chain_definition(DEFINITION, STEPS, {"s3": HOLD_SECONDS})
                )
                secret = first.issue_key(tenant=TENANT, scopes=RUN_SCOPES)
                [run_id] = start_runs([first], secret, DEFINITION, 1)
                assert ledger.arrival("s3").wait(ARRIVAL_TIMEOUT_SECONDS), first.stderr_text()
                os.kill(first.pid, signal.SIGKILL)
                first.process.wait(timeout=10)
            assert first.process.returncode == -signal.SIGKILL
            calls_at_kill = dict(ledger.calls)

            with runtime_server(ledger, data_dir=data_dir, database_url=database_url) as second:
                final = wait_for_run(second, secret, run_id, timeout=RECOVERY_TIMEOUT_SECONDS)
                assert final["status"] == "succeeded", (final, second.stderr_text())

        keys = {label: ledger_key(run_id, label) for label in STEPS}
        # Before the kill: steps 1-2 done, step 3 in flight, nothing after it.
        assert calls_at_kill == {keys["s1"]: 1, keys["s2"]: 1, keys["s3"]: 1}
        # Steps 1-2 were not called again: DBOS replayed their recorded outputs.
        assert ledger.calls[keys["s1"]] == 1
        assert ledger.calls[keys["s2"]] == 1
        # Step 3 was called again (its step never completed) with the same key...
        assert ledger.calls[keys["s3"]] >= 2
        # ...and every side effect exists exactly once.
        assert {label: ledger.effects[key] for label, key in keys.items()} == dict.fromkeys(
            STEPS, 1
        )
        assert [step["status"] for step in final["steps"]] == ["succeeded"] * len(STEPS)
