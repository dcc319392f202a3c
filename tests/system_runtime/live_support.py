"""A real HTTP server (uvicorn, in this process and event loop) in front of the
runtime harness, for the live-progress tests: WebSocket upgrades and SSE need a
real server's disconnect semantics, and serving in process lets a test count the
process's asyncio tasks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import connect

from tests.system_runtime.support import Harness

__all__ = ["Served", "runtime_app", "served", "sse_events", "ws_events"]

_LOOPBACK = "127.0.0.1"


@dataclass
class Served:
    harness: Harness
    port: int
    client: httpx.AsyncClient  # plain HTTP to the server, reused (no TLS set-up per test call)

    @property
    def http(self) -> str:
        return f"http://{_LOOPBACK}:{self.port}"

    def ws_url(self, run_id: str, query: str = "") -> str:
        suffix = f"?{query}" if query else ""
        return f"ws://{_LOOPBACK}:{self.port}/system-runtime/ws/workflows/{run_id}{suffix}"

    def sse_url(self, run_id: str) -> str:
        return f"{self.http}/system-runtime/api/workflows/{run_id}/events"


@contextlib.asynccontextmanager
async def served(harness: Harness, **options: Any) -> AsyncIterator[Served]:
    """Serve the harness's (already started) app on a loopback port until the block ends."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((_LOOPBACK, 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        harness.app,
        lifespan="off",
        ws="websockets-sansio",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]), name="test-uvicorn")
    try:
        while not server.started:
            assert not task.done(), "the test server did not start"
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(timeout=15) as client:
            yield Served(harness, port, client)
    finally:
        server.should_exit = True
        await task
        listener.close()


def runtime_app(harness: Harness) -> Any:
    """The System Runtime's own app inside the harness's all-in-one."""
    for route in harness.app.routes:
        if getattr(route, "path", None) == "/system-runtime":
            return route.app
    raise AssertionError("no System Runtime mounted")


async def ws_events(
    url: str, headers: dict[str, str] | None = None, *, limit: int = 1_000
) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """Every message until the server closes: (events, close code, close reason)."""
    events: list[dict[str, Any]] = []
    async with connect(url, additional_headers=headers or {}, open_timeout=5) as ws:
        async for message in ws:
            events.append(json.loads(message))
            if len(events) >= limit:
                break
        await ws.wait_closed()
        code = ws.close_code
        reason = ws.close_reason
    return events, code, reason


async def sse_events(
    url: str, headers: dict[str, str], *, limit: int = 1_000
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every SSE event until the stream ends: (events' data, comment lines)."""
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    async with httpx.AsyncClient(timeout=15) as client:
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    assert data["type"] == kind
                    events.append(data)
                    if len(events) >= limit:
                        break
    return events, comments
