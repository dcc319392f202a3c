"""Issue 12 acceptance, takeover: a replica dies for good and another finishes its run.

Two real ``xynergy serve`` processes (executor ids ``worker-a`` and ``worker-b``,
one PostgreSQL database) heartbeat every ``HEARTBEAT`` seconds. A run of four
steps, each recording a side effect at the test's receiving service
(``durability_support.EffectLedger``), is dequeued by one of them (the
"owner"). Its step 2 is held longer than the grace period while the owner lives:
nobody takes the run over. Step 3 is held too; while it is in flight the owner
is killed with SIGKILL and not restarted. The survivor takes the run over once
the owner has been silent for ``GRACE`` seconds: the run completes there, steps
1-2 are not called again, step 3 is called again with the same idempotency key
and every side effect exists once. The owner then comes back with its executor
id and executes nothing again.

In process, on PostgreSQL: the sweep's rules (one taker per silent executor,
nothing swept before a replica's own heartbeats span a grace period, another
version's executors left alone) and the settings' bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.helpers import auth, metric_value
from tests.live_server import LiveServer
from tests.system_runtime.durability_support import (
    RUN_SCOPES,
    EffectLedger,
    chain_definition,
    dbos_workflows,
    effect_ledger,
    entered_together,
    ledger_key,
    runtime_server,
    start_runs,
    store_definition,
    wait_for_run,
)
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.config import RUN_CODE_VERSION, RuntimeSettings
from xynergy.system_runtime.engine.host import DbosHost
from xynergy.system_runtime.engine.takeover import ExecutorTakeover
from xynergy.system_runtime.models import RuntimeExecutor

pytestmark = pytest.mark.postgres

EXECUTORS = ("worker-a", "worker-b")
STEPS = ("s1", "s2", "s3", "s4")
HEARTBEAT = 0.5
GRACE = 3.0
# Held past the grace period on a live owner: a long step is not a dead replica.
HOLDS = {"s2": GRACE + 2 * HEARTBEAT, "s3": 2.0}
TAKEOVER = {
    "XYNERGY_RUNTIME_TAKEOVER_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "XYNERGY_RUNTIME_TAKEOVER_GRACE_SECONDS": str(GRACE),
}
ARRIVAL_TIMEOUT_SECONDS = 60.0
# The takeover comes GRACE to GRACE + HEARTBEAT after the owner's last heartbeat;
# the slack covers a busy box (queue polling, two processes on shared cores).
TAKEOVER_SLACK_SECONDS = 10.0
COMPLETION_TIMEOUT_SECONDS = 60.0
# Long enough for the returning owner's launch recovery and several sweeps.
RETURN_OBSERVATION_SECONDS = 4 * HEARTBEAT
TENANT = "takeover-co"
DEFINITION = "four-steps"


def _replica(
    ledger: EffectLedger, tmp_path: Path, executor_id: str, database_url: str
) -> AbstractContextManager[LiveServer]:
    return runtime_server(
        ledger,
        data_dir=tmp_path / executor_id,
        database_url=database_url,
        executor_id=executor_id,
        **TAKEOVER,
    )


def _seconds_until(condition: Callable[[], bool], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _takeovers(server: LiveServer) -> float:
    secret = server.issue_key(tenant=TENANT, scopes=("metrics:read",))
    response = httpx.get(server.base_url + "/metrics", headers=auth(secret), timeout=30)
    assert response.status_code == HTTPStatus.OK, response.text
    return metric_value(response.text, "xynergy_runtime_executor_takeovers_total")


@pytest.mark.durability
class TestTakeoverOfADeadReplica:
    def test_the_survivor_completes_the_run_with_each_side_effect_once(
        self, pg_database_url: str, tmp_path: Path
    ) -> None:
        with effect_ledger() as ledger:
            replicas = [
                _replica(ledger, tmp_path, executor, pg_database_url) for executor in EXECUTORS
            ]
            with entered_together(replicas) as servers:
                by_executor = dict(zip(EXECUTORS, servers, strict=True))
                store_definition(servers[0], TENANT, chain_definition(DEFINITION, STEPS, HOLDS))
                secret = servers[0].issue_key(tenant=TENANT, scopes=RUN_SCOPES)
                [run_id] = start_runs(servers, secret, DEFINITION, 1)
                assert ledger.arrival("s3").wait(ARRIVAL_TIMEOUT_SECONDS), servers[0].stderr_text()
                owner_id = dbos_workflows(servers[0], [run_id])[run_id]["executor_id"]
                [survivor_id] = [executor for executor in EXECUTORS if executor != owner_id]
                owner, survivor = by_executor[owner_id], by_executor[survivor_id]
                calls_at_kill = dict(ledger.calls)
                os.kill(owner.pid, signal.SIGKILL)
                owner.process.wait(timeout=10)
                s3 = ledger_key(run_id, "s3")
                taken_after = _seconds_until(
                    lambda: ledger.calls[s3] >= 2, GRACE + HEARTBEAT + TAKEOVER_SLACK_SECONDS
                )
                final = wait_for_run(survivor, secret, run_id, timeout=COMPLETION_TIMEOUT_SECONDS)
                workflow = dbos_workflows(survivor, [run_id])[run_id]
                takeovers = _takeovers(survivor)
                survivor_log = survivor.stdout_text()

            # The owner comes back with its id: nothing of the run executes again.
            calls_before_return = dict(ledger.calls)
            with _replica(ledger, tmp_path, owner_id, pg_database_url) as returned:
                time.sleep(RETURN_OBSERVATION_SECONDS)
                after_return = wait_for_run(returned, secret, run_id, timeout=0)
                workflow_after_return = dbos_workflows(returned, [run_id])[run_id]
            calls_after_return = dict(ledger.calls)

        print(f"\ntaken over {taken_after} s after the kill (grace {GRACE} s)")  # noqa: T201
        keys = {label: ledger_key(run_id, label) for label in STEPS}
        # Before the kill: steps 1-2 done once (step 2 outlived the grace period on a
        # live owner without being taken over), step 3 in flight.
        assert calls_at_kill == {keys["s1"]: 1, keys["s2"]: 1, keys["s3"]: 1}
        # Taken over once the owner was silent for the grace period, not before.
        assert taken_after is not None, survivor_log
        assert taken_after >= GRACE - HEARTBEAT, taken_after
        assert final["status"] == "succeeded", (final, survivor_log)
        assert [step["status"] for step in final["steps"]] == ["succeeded"] * len(STEPS)
        # Steps 1-2 were not called again; step 3 was, with the same key; each effect once.
        assert ledger.calls[keys["s1"]] == 1
        assert ledger.calls[keys["s2"]] == 1
        assert ledger.calls[keys["s3"]] >= 2
        assert {label: ledger.effects[key] for label, key in keys.items()} == dict.fromkeys(
            STEPS, 1
        )
        # DBOS's record: finished by the survivor; the takeover is counted and logged.
        assert (workflow["status"], workflow["executor_id"]) == ("SUCCESS", survivor_id)
        assert takeovers == 1
        assert "runtime.executor_taken_over" in survivor_log
        # The returning owner recovered nothing and executed nothing.
        assert calls_after_return == calls_before_return
        assert after_return["status"] == "succeeded"
        assert workflow_after_return == workflow


# --- the sweep, in process ----------------------------------------------------------
SWEEP_GRACE = 1.0
SILENT = "silent-replica"


def _sweeper(settings: Settings, executor_id: str) -> ExecutorTakeover:
    runtime = RuntimeSettings(
        executor_id=executor_id,
        takeover_heartbeat_seconds=0.1,
        takeover_grace_seconds=SWEEP_GRACE,
    )
    return ExecutorTakeover(settings, runtime)


async def _by_hand(settings: Settings, platform: Platform, executor_id: str) -> ExecutorTakeover:
    """A sweeper after its first heartbeat, its own task stopped: the test ticks it."""
    sweeper = _sweeper(settings, executor_id)
    await sweeper.start(platform)
    await sweeper.stop()
    return sweeper


async def _add_executor(
    platform: Platform, executor_id: str, *, silent_for: float, version: str = RUN_CODE_VERSION
) -> None:
    async with unit_of_work(platform.sessionmaker) as session:
        session.add(
            RuntimeExecutor(
                executor_id=executor_id,
                application_version=version,
                heartbeat_at=utcnow() - timedelta(seconds=silent_for),
            )
        )


async def _tick_for(sweepers: list[ExecutorTakeover], seconds: float) -> list[list[str]]:
    """Every sweeper ticks (all at once) every 0.1 s for ``seconds``: what each took over."""
    taken: list[list[str]] = [[] for _ in sweepers]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        results = await asyncio.gather(*(sweeper.tick() for sweeper in sweepers))
        for mine, got in zip(taken, results, strict=True):
            mine.extend(got)
        await asyncio.sleep(0.1)
    return taken


async def _executor_ids(platform: Platform) -> set[str]:
    async with unit_of_work(platform.sessionmaker) as session:
        rows = await session.execute(select(RuntimeExecutor.executor_id).limit(100))
        return set(rows.scalars())


@pytest.fixture
async def engine_on_pg(
    make_settings: Callable[..., Settings], pg_database_url: str
) -> AsyncIterator[tuple[Settings, Platform]]:
    """The platform's pools and a launched DBOS engine, on the test's PostgreSQL."""
    settings = make_settings(database_url=pg_database_url)
    platform = await Platform.open(settings)
    try:
        await DbosHost.acquire(settings, RuntimeSettings())
        try:
            yield settings, platform
        finally:
            await DbosHost.release()
    finally:
        await platform.close()


class TestSweep:
    async def test_one_of_two_replicas_takes_over_a_silent_executor(
        self, engine_on_pg: tuple[Settings, Platform]
    ) -> None:
        settings, platform = engine_on_pg
        await _add_executor(platform, SILENT, silent_for=3600)
        sweepers = [await _by_hand(settings, platform, f"replica-{n}") for n in (1, 2)]
        taken = await _tick_for(sweepers, SWEEP_GRACE + 0.5)
        assert sorted(taken) == [[], [SILENT]]
        # The silent executor's row is gone; the live replicas did not take each other.
        assert await _executor_ids(platform) == {"replica-1", "replica-2"}
        assert "xynergy_runtime_executor_takeovers_total 1.0" in platform.metrics.render().decode()

    async def test_a_replica_sweeps_once_its_own_heartbeats_span_a_grace_period(
        self, engine_on_pg: tuple[Settings, Platform]
    ) -> None:
        # After an outage every heartbeat is old: the others get a grace period to beat.
        settings, platform = engine_on_pg
        await _add_executor(platform, SILENT, silent_for=3600)
        sweeper = await _by_hand(settings, platform, "replica-1")
        assert await sweeper.tick() == []
        assert await _tick_for([sweeper], SWEEP_GRACE + 0.5) == [[SILENT]]

    async def test_another_versions_executors_are_left_to_its_replicas(
        self, engine_on_pg: tuple[Settings, Platform]
    ) -> None:
        settings, platform = engine_on_pg
        await _add_executor(platform, SILENT, silent_for=3600, version="runs-0")
        sweeper = await _by_hand(settings, platform, "replica-1")
        assert await _tick_for([sweeper], SWEEP_GRACE + 0.5) == [[]]
        assert SILENT in await _executor_ids(platform)


class TestSettings:
    def test_the_grace_period_spans_three_heartbeats(self) -> None:
        with pytest.raises(ValidationError, match="3 x takeover_heartbeat_seconds"):
            RuntimeSettings(takeover_heartbeat_seconds=5, takeover_grace_seconds=14)

    def test_sqlite_never_sweeps(self, make_settings: Callable[..., Settings]) -> None:
        assert not ExecutorTakeover(make_settings(), RuntimeSettings()).enabled
