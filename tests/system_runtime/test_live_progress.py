"""Live progress of a run over WebSocket and SSE: snapshot, step events, heartbeats, the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.system_runtime.live_support import runtime_app, served, sse_events, ws_events
from tests.system_runtime.support import harness, op, runtime_settings
from xynergy.platform.config import Settings
from xynergy.system_runtime.engine.events import RunEvents

TWO_STEPS = [op("a", "test.sleep", ms=100), op("b", "test.sleep", ms=50, depends_on=["a"])]
WAIT = [{"id": "pause", "kind": "wait", "wait_seconds": 1.0}]
APPROVAL = [{"id": "approve", "kind": "approval", "approval_timeout_seconds": 600}]


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def _assert_followed(events: list[dict[str, Any]], run_id: str, status: str) -> None:
    types = _types(events)
    assert types[0] == "snapshot", types
    assert events[0]["run"]["id"] == run_id
    assert types[-1] == "run.finished", types
    assert types.count("run.finished") == 1
    assert events[-1]["status"] == status
    # Each step is told from where the snapshot left it, once, bus or rows: a step
    # the snapshot already shows running (the watcher came late, as on a loaded
    # machine) is told only its end.
    shown = {step["id"]: step["status"] for step in events[0]["run"]["steps"]}
    expected: list[tuple[str, str]] = []
    for step in ("a", "b"):
        assert shown[step] in ("pending", "running", "succeeded"), shown
        if shown[step] == "pending":
            expected.append(("step.started", step))
        if shown[step] != "succeeded":
            expected.append(("step.succeeded", step))
    told = [(e["type"], e["step_id"]) for e in events if e["type"].startswith("step.")]
    assert sorted(told, key=lambda event: event[1]) == expected
    assert all(e["run_id"] == run_id for e in events[1:])


class TestWebSocket:
    async def test_a_run_is_followed_to_its_end_then_closed(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        async with harness(settings, runtime=runtime_settings(live_poll_seconds=5.0)) as h:
            await h.define("two", TWO_STEPS)
            async with served(h) as server:
                run_id = await h.started("two")
                events, code, reason = await asyncio.wait_for(
                    ws_events(server.ws_url(run_id), h.headers), 15
                )
        _assert_followed(events, run_id, "succeeded")
        assert (code, reason) == (1000, "run finished")

    async def test_a_run_on_another_replica_is_followed_from_its_rows(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        # The stream's bus is not the one the engine publishes on: as on a replica
        # that does not execute the run, only the rows tell what happens.
        settings = make_settings(database_url=database_url)
        async with harness(settings, runtime=runtime_settings(live_poll_seconds=0.05)) as h:
            runtime_app(h).state.live.events = RunEvents()
            await h.define("two", TWO_STEPS)
            async with served(h) as server:
                run_id = await h.started("two")
                events, code, _ = await asyncio.wait_for(
                    ws_events(server.ws_url(run_id), h.headers), 15
                )
        _assert_followed(events, run_id, "succeeded")
        assert code == 1000

    async def test_a_late_subscriber_of_a_finished_run_gets_the_snapshot_and_the_end(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            await h.define("two", TWO_STEPS)
            run_id = await h.started("two")
            await h.wait_for(run_id)
            async with served(h) as server:
                events, code, _ = await ws_events(server.ws_url(run_id), h.headers)
        assert _types(events) == ["snapshot", "run.finished"]
        assert [s["status"] for s in events[0]["run"]["steps"]] == ["succeeded", "succeeded"]
        assert events[1]["status"] == "succeeded"
        assert code == 1000

    async def test_a_quiet_run_sends_heartbeats(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        runtime = runtime_settings(live_heartbeat_seconds=0.1, live_poll_seconds=5.0)
        async with harness(make_settings(), runtime=runtime) as h:
            await h.define("pause", WAIT)
            async with served(h) as server:
                run_id = await h.started("pause")
                events, _, _ = await asyncio.wait_for(
                    ws_events(server.ws_url(run_id), h.headers), 15
                )
        assert _types(events).count("heartbeat") >= 3
        assert events[-1] == {
            "type": "run.finished",
            "run_id": run_id,
            "status": "succeeded",
            "error": None,
        }

    async def test_a_cancel_nobody_published_is_told_from_the_rows(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        runtime = runtime_settings(live_poll_seconds=0.05)
        async with harness(make_settings(), runtime=runtime) as h:
            await h.define("approval", APPROVAL)
            async with served(h) as server:
                run_id = await h.started("approval")
                await h.wait_for(run_id, ("waiting",))
                watching = asyncio.create_task(ws_events(server.ws_url(run_id), h.headers))
                await asyncio.sleep(0.2)
                assert (await h.post(run_id, "cancel")).status_code == 200
                events, code, _ = await asyncio.wait_for(watching, 15)
        assert events[0]["run"]["status"] == "waiting"
        assert events[-1]["type"] == "run.finished"
        assert events[-1]["status"] == "cancelled"
        assert code == 1000


class TestServerSentEvents:
    async def test_a_run_is_followed_to_its_end(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        async with harness(settings, runtime=runtime_settings(live_poll_seconds=5.0)) as h:
            await h.define("two", TWO_STEPS)
            async with served(h) as server:
                run_id = await h.started("two")
                events, _ = await asyncio.wait_for(
                    sse_events(server.sse_url(run_id), h.headers), 15
                )
        _assert_followed(events, run_id, "succeeded")

    async def test_a_run_on_another_replica_is_followed_from_its_rows(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings(), runtime=runtime_settings(live_poll_seconds=0.05)) as h:
            runtime_app(h).state.live.events = RunEvents()
            await h.define("two", TWO_STEPS)
            async with served(h) as server:
                run_id = await h.started("two")
                events, _ = await asyncio.wait_for(
                    sse_events(server.sse_url(run_id), h.headers), 15
                )
        _assert_followed(events, run_id, "succeeded")

    async def test_a_finished_run_answers_its_snapshot_and_the_end(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            await h.define("two", TWO_STEPS)
            run_id = await h.started("two")
            await h.wait_for(run_id)
            async with served(h) as server:
                events, _ = await sse_events(server.sse_url(run_id), h.headers)
        assert _types(events) == ["snapshot", "run.finished"]
