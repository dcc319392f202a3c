"""``GET /api/workflows/{run_id}/events``: a run's progress as Server-Sent Events.

Each event is ``event: <type>`` with its JSON in ``data:``; the stream ends after
``run.finished``. A consumer too slow to keep up gets a final comment and a
``dropped`` event, then the end. While it streams, the response also waits for
the client's disconnect (whatever the server's ASGI version), so a client that
leaves ends the stream at once rather than at the next write: two tasks per
stream, both ended with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.live.progress import SHUTTING_DOWN, LiveEvent, follow
from xynergy.system_runtime.live.service import LiveProgress
from xynergy.system_runtime.runs.schemas import RunDetail

__all__ = ["EventStreamResponse", "progress_frames"]

_SLOW_COMMENT = ": dropped: slow consumer, fell too far behind the run's events\n\n"


def _frame(event: LiveEvent, run_id: str) -> str:
    data = json.dumps(event.message(run_id), separators=(",", ":"))
    frame = f"event: {event.type}\ndata: {data}\n\n"
    slow = event.type == "dropped" and event.data.get("reason") != SHUTTING_DOWN
    return _SLOW_COMMENT + frame if slow else frame


async def progress_frames(
    context: RuntimeContext, live: LiveProgress, snapshot: RunDetail
) -> AsyncGenerator[str, None]:
    """The run's progress as SSE frames, until its end (or the consumer's drop)."""
    stream = follow(
        context,
        live.events,
        snapshot,
        heartbeat_seconds=live.settings.live_heartbeat_seconds,
        poll_seconds=live.settings.live_poll_seconds,
    )
    async with contextlib.aclosing(stream):
        async for event in stream:
            yield _frame(event, snapshot.id)


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` of ``frames``; ``on_close`` runs once the stream ends."""

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncGenerator[str, None], *, on_close: Callable[[], None]) -> None:
        # Proxies (nginx) would otherwise hold the events back in their buffers.
        super().__init__(frames, headers={"X-Accel-Buffering": "no"})
        self._frames = frames
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            sender = asyncio.create_task(self._send_all(send), name="live-sse-send")
            listener = asyncio.create_task(_until_disconnect(receive), name="live-sse-recv")
            try:
                await asyncio.wait((sender, listener), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sender, listener):
                    task.cancel()
                await asyncio.gather(sender, listener, return_exceptions=True)
        finally:
            try:
                await self._frames.aclose()
            finally:
                self._on_close()

    async def _send_all(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        with contextlib.suppress(OSError):  # the client left mid-write
            async for frame in self._frames:
                await send(
                    {"type": "http.response.body", "body": frame.encode(), "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
