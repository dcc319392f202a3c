"""Stopping the runtime with runs in flight: drained within a grace, quiet, recovered later.

The app's lifespan ends while a step's call is in flight. A run that finishes
within ``shutdown_grace_seconds`` completes before DBOS is destroyed; one that
does not is stopped where it is, with nothing logged as a warning or an error
and its records left as they were (not failed), and the next launch with the
same executor id continues it at its unfinished step: completed steps are not
called again, and the interrupted call, made again with its Idempotency-Key,
has its side effect once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

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
from tests.system_runtime.support import Probe, harness, op, runtime_settings
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.system_runtime.models import RunRecord

SLOW_MS = 3_000
# Past the shutdown, long enough for a run that was not stopped to finish its slow
# call and go on (and to log what that costs it).
AFTER_SHUTDOWN_SECONDS = SLOW_MS / 1000 + 0.5


@dataclass
class Logged:
    """Warnings and errors from stdlib loggers (DBOS's) and structlog (ours)."""

    records: list[logging.LogRecord]
    events: list[MutableMapping[str, Any]]

    def problems(self) -> list[str]:
        stdlib = [
            f"{record.name}: {record.getMessage()}"
            for record in self.records
            if record.levelno >= logging.WARNING
        ]
        ours = [str(event) for event in self.events if event["log_level"] in ("warning", "error")]
        return stdlib + ours

    def names(self) -> list[str]:
        return [str(event["event"]) for event in self.events]


@contextmanager
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[Logged]:
    caplog.clear()
    with caplog.at_level(logging.INFO), capture_logs() as events:
        result = Logged(caplog.records, events)
        yield result


async def _status(settings: Settings, run_id: str) -> str:
    # Read straight from the database: the app that ran it has stopped.
    engine = create_engine_from_settings(settings)
    try:
        async with engine.connect() as connection:
            status = await connection.scalar(select(RunRecord.status).where(RunRecord.id == run_id))
    finally:
        await engine.dispose()
    return str(status)


def _chain() -> list[dict[str, Any]]:
    # /api/create records its side effect per Idempotency-Key before it sleeps
    # (the first call with a key only), so an interrupted call still left one.
    return [
        op("first", "test.create"),
        op("slow", "test.create", ms=SLOW_MS, depends_on=["first"]),
        op("last", "test.create", depends_on=["slow"]),
    ]


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


class TestShutdownWithRunsInFlight:
    async def test_a_run_that_finishes_within_the_grace_completes_before_the_engine_stops(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        probe = Probe()
        runtime = runtime_settings(shutdown_grace_seconds=30)
        with logged(caplog) as logs:
            async with harness(settings, probe=probe, runtime=runtime) as h:
                await h.define("chain", _chain())
                run_id = await h.started("chain")
                await h.wait_for_step(run_id, "slow", "running")
        assert await _status(settings, run_id) == "succeeded"
        assert dict(probe.side_effects) == {"first": 1, "slow": 1, "last": 1}
        assert logs.problems() == []
        assert "runtime.runs_interrupted" not in logs.names()

    async def test_a_run_past_the_grace_stops_quietly_and_continues_after_a_relaunch(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        probe = Probe()
        runtime = runtime_settings(shutdown_grace_seconds=0.2)
        with logged(caplog) as logs:
            async with harness(settings, probe=probe, runtime=runtime) as h:
                await h.define("chain", _chain())
                run_id = await h.started("chain")
                await h.wait_for_step(run_id, "slow", "running")
            # Nothing of the run goes on once the app has stopped.
            calls_at_stop = dict(probe.invocations_by_key)
            await asyncio.sleep(AFTER_SHUTDOWN_SECONDS)
            assert dict(probe.invocations_by_key) == calls_at_stop
            assert sorted(calls_at_stop.values()) == [1, 1]  # first, and slow in flight
        assert logs.problems() == []
        # Not failed: to the runtime the run is still going, and it will continue.
        assert await _status(settings, run_id) == "running"

        # The same database and executor id: DBOS recovers the run as it launches.
        async with harness(settings, probe=probe, runtime=runtime) as h:
            final = await h.wait_for(run_id)
        assert final["status"] == "succeeded", final
        assert [step["status"] for step in final["steps"]] == ["succeeded"] * 3
        # The finished step was not called again; the interrupted one was called
        # again with its key (one key twice), and every side effect exists once.
        assert sorted(probe.invocations_by_key.values()) == [1, 1, 2]
        assert dict(probe.side_effects) == {"first": 1, "slow": 1, "last": 1}
        assert "runtime.runs_interrupted" in logs.names()


# SIGTERM arrives while s2's call is held: s2 ends within the grace, s3 does not.
HOLDS = {"s2": 1.0, "s3": 6.0}
SIGTERM_GRACE_SECONDS = "3"
ARRIVAL_TIMEOUT_SECONDS = 30.0
EXIT_TIMEOUT_SECONDS = 60.0
RECOVERY_TIMEOUT_SECONDS = 60.0
TENANT = "sigterm-co"
DEFINITION = "four-steps"
STEPS = ("s1", "s2", "s3", "s4")


@pytest.mark.durability
class TestSigtermWithARunInFlight:
    def test_the_step_in_flight_finishes_the_next_stops_quietly_and_all_complete_later(
        self, database_url: str, tmp_path: Path
    ) -> None:
        data_dir = tmp_path / "server"
        with effect_ledger() as ledger:
            serve = partial(
                runtime_server,
                ledger,
                data_dir=data_dir,
                database_url=database_url,
                XYNERGY_RUNTIME_SHUTDOWN_GRACE_SECONDS=SIGTERM_GRACE_SECONDS,
                XYNERGY_LOG_LEVEL="INFO",
            )
            with serve() as first:
                store_definition(first, TENANT, chain_definition(DEFINITION, STEPS, HOLDS))
                secret = first.issue_key(tenant=TENANT, scopes=RUN_SCOPES)
                [run_id] = start_runs([first], secret, DEFINITION, 1)
                assert ledger.arrival("s2").wait(ARRIVAL_TIMEOUT_SECONDS), first.stderr_text()
                os.kill(first.pid, signal.SIGTERM)
                first.process.wait(timeout=EXIT_TIMEOUT_SECONDS)
                output = first.stdout_text() + first.stderr_text()
            # uvicorn shuts down on SIGTERM, then re-raises it: the process ends by it.
            assert first.process.returncode in (0, -signal.SIGTERM), output
            assert "Traceback" not in output, output
            compact = output.replace(" ", "")
            assert '"level":"error"' not in compact, output
            assert '"level":"warning"' not in compact, output
            assert "runtime.runs_interrupted" in output, output

            with serve() as second:
                final = wait_for_run(second, secret, run_id, timeout=RECOVERY_TIMEOUT_SECONDS)
            assert final["status"] == "succeeded", (final, second.stderr_text())

        keys = {label: ledger_key(run_id, label) for label in STEPS}
        # s2 finished within the grace and was recorded: not called again. s3 was
        # stopped by the shutdown and called again with its key after the restart.
        assert (ledger.calls[keys["s1"]], ledger.calls[keys["s2"]]) == (1, 1)
        assert ledger.calls[keys["s3"]] >= 2
        assert {label: ledger.effects[key] for label, key in keys.items()} == dict.fromkeys(
            STEPS, 1
        )
