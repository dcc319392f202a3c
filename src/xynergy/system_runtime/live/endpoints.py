"""Live progress API: WebSocket tickets, the SSE stream and the WebSocket route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.routing import api_router, idempotency_exempt
from xynergy.platform.schemas import ResourceId
from xynergy.system_runtime.live.schemas import WsTicket
from xynergy.system_runtime.live.service import LiveProgress
from xynergy.system_runtime.live.sse import EventStreamResponse, progress_frames
from xynergy.system_runtime.live.tickets import TICKET_SCOPE
from xynergy.system_runtime.live.websocket import websocket_route

__all__ = ["router"]

router = api_router(prefix="/api", tags=["workflows"])

RunReader = Annotated[AuthContext, Depends(require_scopes(TICKET_SCOPE))]


@router.post("/ws-tickets", status_code=201)
@idempotency_exempt("a ticket is a single-use secret: a stored answer would hand it out twice")
async def create_ws_ticket(request: Request, auth: RunReader) -> WsTicket:
    """A single-use ticket, valid for seconds, to open /ws/workflows/{run_id} from a
    browser (which cannot send a key header on a WebSocket)."""
    live: LiveProgress = request.app.state.live
    issued = await live.tickets.mint(auth)
    return WsTicket(ticket=issued.ticket, expires_at=issued.expires_at)


@router.get("/workflows/{run_id}/events", response_class=EventStreamResponse, status_code=200)
async def watch_workflow_events(
    run_id: ResourceId, request: Request, auth: RunReader
) -> EventStreamResponse:
    """The run's progress as Server-Sent Events: a snapshot, each step's start and
    end, heartbeats, and a final run.finished event (429 too_many_streams past the
    caps on open streams)."""
    live: LiveProgress = request.app.state.live
    context = request.app.state.runtime
    opened = await live.open_stream(context, auth, run_id)
    return EventStreamResponse(
        progress_frames(context, live, opened.snapshot), on_close=opened.slot.release
    )


# The WebSocket route travels with this router (create_service_app takes its routes).
router.routes.append(websocket_route())
