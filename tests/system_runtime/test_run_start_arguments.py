"""A run's first workflow gets what it executes as DBOS arguments (engine/plan.py).

It reads no row when the process that started it holds the definition; any other
process, and a run queued with its id only (reconcile, the previous version), reads
the row, with the same outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.system_runtime.support import Harness, harness
from xynergy.platform.config import Settings
from xynergy.system_runtime.engine import control, records
from xynergy.system_runtime.engine.context import current
from xynergy.system_runtime.models import RunRecord
from xynergy.system_runtime.runs import service

pytestmark = pytest.mark.asyncio

TAG = "from-the-start"


class _Reads:
    """Counts the engine's reads of run rows."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = records.load_run

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(*args, **kwargs)

        monkeypatch.setattr(records, "load_run", counted)


async def _echo(h: Harness) -> dict[str, Any]:
    """Define a one-step run whose call carries the run's input, start it, wait."""
    await h.define(
        "echo",
        [{"id": "only", "operation": "test.sleep", "input": {"tag": {"$ref": "/input/tag"}}}],
        inputs={"tag": {"type": "string"}},
    )
    run_id = await h.started("echo", {"tag": TAG})
    return await h.wait_for(run_id)


class TestFirstWorkflow:
    async def test_it_executes_from_its_arguments_without_reading_its_row(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        reads = _Reads(monkeypatch)
        async with harness(make_settings(database_url=database_url)) as h:
            body = await _echo(h)
        assert body["status"] == "succeeded", body
        assert TAG in h.probe.intervals  # the input reached the call
        assert reads.count == 0

    async def test_without_the_definition_at_hand_it_reads_its_row(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # As on a replica that did not start the run: its definition is not cached.
        reads = _Reads(monkeypatch)
        original = service._enqueue

        async def elsewhere(run: RunRecord) -> None:
            current().checked_specs.clear()
            await original(run)

        monkeypatch.setattr(service, "_enqueue", elsewhere)
        async with harness(make_settings(database_url=database_url)) as h:
            body = await _echo(h)
        assert body["status"] == "succeeded", body
        assert TAG in h.probe.intervals
        assert reads.count == 1

    async def test_a_run_queued_with_its_id_only_reads_its_row(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # How reconcile queues a run, and how runs-1 queued every run.
        reads = _Reads(monkeypatch)

        async def id_only(run: RunRecord) -> None:
            await control.enqueue(run.id, workflow_id=run.workflow_id, tenant_id=run.tenant_id)

        monkeypatch.setattr(service, "_enqueue", id_only)
        async with harness(make_settings(database_url=database_url)) as h:
            body = await _echo(h)
        assert body["status"] == "succeeded", body
        assert TAG in h.probe.intervals
        assert reads.count == 1
