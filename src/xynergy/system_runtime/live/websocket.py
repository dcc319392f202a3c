"""``/ws/workflows/{run_id}``: a run's progress over a WebSocket.

Refused before accept (an HTTP 401/403/404/429 in the platform's error shape)
unless authenticated — key header or single-use ticket — for the run's tenant.
Once accepted, the connection has two tasks, both ended when it ends: one sends
the progress, one waits for the client's close. Whichever ends first cancels the
other, so a client that vanishes leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.websockets import WebSocket, WebSocketDisconnect

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.websocket_routing import SecureWebSocketRoute, deny
from xynergy.system_runtime.live.progress import SHUTTING_DOWN, follow
from xynergy.system_runtime.live.service import LiveProgress
from xynergy.system_runtime.live.tickets import TICKET_SCOPE
from xynergy.system_runtime.runs.schemas import RunDetail

__all__ = ["CLOSE_RUN_ENDED", "CLOSE_SERVICE_RESTART", "CLOSE_SLOW_CONSUMER", "websocket_route"]

CLOSE_RUN_ENDED = 1000
# RFC 6455 "policy violation": the client did not read fast enough.
CLOSE_SLOW_CONSUMER = 1008
_SLOW_REASON = "slow consumer: fell too far behind the run's events"
# RFC 6455 "service restart" (as uvicorn closes on shutdown): reconnect, elsewhere.
CLOSE_SERVICE_RESTART = 1012


async def _redeem_ticket(websocket: WebSocket, ticket: str) -> AuthContext:
    live: LiveProgress = websocket.app.state.live
    return await live.tickets.redeem(ticket)


async def watch_run(websocket: WebSocket) -> None:
    """Follow one run: a snapshot, each step's start and end, heartbeats, the end."""
    live: LiveProgress = websocket.app.state.live
    run_id: str = websocket.path_params["run_id"]
    try:
        opened = await live.open_stream(websocket.app.state.runtime, websocket.state.auth, run_id)
    except XynergyError as refused:
        await deny(websocket, refused)
        return
    try:
        await websocket.accept()
        sender = asyncio.create_task(
            _send_progress(websocket, live, opened.snapshot), name=f"live-ws-send-{run_id}"
        )
        listener = asyncio.create_task(_until_closed(websocket), name=f"live-ws-recv-{run_id}")
        try:
            await asyncio.wait((sender, listener), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, listener):
                task.cancel()
            await asyncio.gather(sender, listener, return_exceptions=True)
        if listener.cancelled() and not sender.cancelled() and sender.exception() is None:
            code, reason = sender.result()
            with contextlib.suppress(Exception):  # the client may be gone by now
                await websocket.close(code=code, reason=reason)
    finally:
        opened.slot.release()


async def _send_progress(
    websocket: WebSocket, live: LiveProgress, snapshot: RunDetail
) -> tuple[int, str]:
    settings = live.settings
    stream = follow(
        websocket.app.state.runtime,
        live.events,
        snapshot,
        heartbeat_seconds=settings.live_heartbeat_seconds,
        poll_seconds=settings.live_poll_seconds,
    )
    async with contextlib.aclosing(stream):
        async for event in stream:
            await websocket.send_text(json.dumps(event.message(snapshot.id)))
            if event.type == "dropped" and event.data.get("reason") == SHUTTING_DOWN:
                return CLOSE_SERVICE_RESTART, "server restarting"
            if event.type == "dropped":
                return CLOSE_SLOW_CONSUMER, _SLOW_REASON
    return CLOSE_RUN_ENDED, "run finished"


async def _until_closed(websocket: WebSocket) -> None:
    # What the client sends is not read for anything: only its close matters.
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


def websocket_route() -> SecureWebSocketRoute:
    return SecureWebSocketRoute(
        "/ws/workflows/{run_id}",
        watch_run,
        scopes=(TICKET_SCOPE,),
        rate_class="reads",
        redeem_ticket=_redeem_ticket,
        name="watch_workflow_ws",
    )
