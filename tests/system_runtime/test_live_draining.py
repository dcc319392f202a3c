"""A stopping replica ends its progress streams at once, saying so, instead of at the run's end.

uvicorn waits without a bound for the responses it is serving when it is told to
exit; an SSE stream of a long run would hold the replica up past the process
manager's stop timeout. The server marks the process as stopping
(``platform.draining``) and each stream ends with a final ``dropped`` event,
reason ``shutting_down`` (a WebSocket then closes with 1012, service restart).
The cluster suite's tests/cluster/test_fault_drain.py checks it end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from tests.system_runtime.live_support import served, sse_events
from tests.system_runtime.support import harness, runtime_settings
from xynergy.platform import draining, serving
from xynergy.platform.config import Settings

LONG_WAIT = [{"id": "pause", "kind": "wait", "wait_seconds": 600}]
STREAM_OPEN_SECONDS = 0.3
# The stream looks at the flag at least once per heartbeat or poll.
ENDED_WITHIN_SECONDS = 5.0


async def _ws_until_closed(
    url: str, headers: dict[str, str]
) -> tuple[list[dict[str, Any]], int | None, str | None]:
    events: list[dict[str, Any]] = []
    async with connect(url, additional_headers=headers, open_timeout=5) as ws:
        with contextlib.suppress(ConnectionClosedError):  # 1012 is not a "normal" close
            async for message in ws:
                events.append(json.loads(message))
        await ws.wait_closed()
        return events, ws.close_code, ws.close_reason


@pytest.fixture
def stopping(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """This test's own "stopping" flag (the process's is set once, for good)."""
    flag = threading.Event()
    monkeypatch.setattr(draining, "_stopping", flag)
    return flag


async def test_an_sse_stream_ends_with_a_shutting_down_event(
    make_settings: Callable[..., Settings], stopping: threading.Event
) -> None:
    runtime = runtime_settings(live_heartbeat_seconds=0.1, live_poll_seconds=5.0)
    async with harness(make_settings(), runtime=runtime) as h:
        await h.define("pause", LONG_WAIT)
        async with served(h) as server:
            run_id = await h.started("pause")
            stream = asyncio.create_task(sse_events(server.sse_url(run_id), h.headers))
            await asyncio.sleep(STREAM_OPEN_SECONDS)
            assert not stream.done()
            draining.begin()
            events, comments = await asyncio.wait_for(stream, ENDED_WITHIN_SECONDS)
    assert events[0]["type"] == "snapshot"
    assert events[-1] == {"type": "dropped", "run_id": run_id, "reason": "shutting_down"}
    assert not any("slow consumer" in comment for comment in comments)


async def test_a_websocket_closes_with_service_restart(
    make_settings: Callable[..., Settings], stopping: threading.Event
) -> None:
    runtime = runtime_settings(live_heartbeat_seconds=0.1, live_poll_seconds=5.0)
    async with harness(make_settings(), runtime=runtime) as h:
        await h.define("pause", LONG_WAIT)
        async with served(h) as server:
            run_id = await h.started("pause")
            stream = asyncio.create_task(_ws_until_closed(server.ws_url(run_id), h.headers))
            await asyncio.sleep(STREAM_OPEN_SECONDS)
            assert not stream.done()
            draining.begin()
            events, code, reason = await asyncio.wait_for(stream, ENDED_WITHIN_SECONDS)
    assert events[-1] == {"type": "dropped", "run_id": run_id, "reason": "shutting_down"}
    assert (code, reason) == (1012, "server restarting")


def test_the_server_marks_the_process_as_stopping_on_exit(stopping: threading.Event) -> None:
    server = serving._DrainingServer(uvicorn.Config(app=None))
    assert not draining.started()
    server.handle_exit(signal.SIGTERM, None)
    assert draining.started()
    assert server.should_exit
