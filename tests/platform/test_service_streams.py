"""``ServiceClient.stream`` over the network: a real HTTP server on loopback.

The callee streams chunks as the test releases them, so "incremental" is proven
by order (the client holds the first chunk while the server has not sent the
last), not by timing. It also verifies the internal token it was given, stalls
to trip the per-read timeout, and counts its open connections to show that a
consumer stopping early closes the connection rather than leaking it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.internal_tokens import INTERNAL_TOKEN_HEADER, InternalTokens
from xynergy.platform.breaker import Breakers
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.service_streams import asgi_stream
from xynergy.platform.services import ServiceClient

pytestmark = pytest.mark.asyncio

SERVICE = "stream-svc"
CALLER = AuthContext(tenant_id="t1", key_id="k1", key_tenant_id="t1", scopes=frozenset({"x:read"}))
READ_TIMEOUT = 0.3
DROP = b"<drop the connection>"
# Far above the read timeout: reaching it means the client hung.
HANG_BOUND = 10.0


@dataclass
class Callee:
    """The streaming service: sends one chunk per ``release`` (``stall`` sends nothing more)."""

    tokens: InternalTokens
    release: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    sent: list[bytes] = field(default_factory=list)
    callers: list[AuthContext] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.callers.append(
            self.tokens.verify(request.headers[INTERNAL_TOKEN_HEADER], audience=SERVICE)
        )
        self.bodies.append(await request.read())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while (chunk := await self.release.get()) is not None:
            if chunk == DROP:
                assert request.transport is not None
                request.transport.abort()  # the service dies mid-body
                return response
            await response.write(chunk)
            self.sent.append(chunk)
        await response.write_eof()
        return response

    def connections(self) -> int:
        """Requests whose connection is still open (aiohttp drops a closed one's transport)."""
        return sum(request.transport is not None for request in self.requests)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Callee, ServiceClient]]:
    tokens = InternalTokens.from_settings(settings)
    callee = Callee(tokens)
    app = web.Application()
    app.router.add_post("/api/stream", callee.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client_settings = settings.model_copy(
        update={"service_urls": {SERVICE: f"http://127.0.0.1:{port}"}}
    )
    http = OutboundHTTP(client_settings)
    client = ServiceClient(
        client_settings, http, tokens, Breakers(client_settings, PlatformMetrics(), None)
    )
    try:
        yield callee, client
    finally:
        await client.close()
        await http.close()
        for _ in callee.requests:
            callee.release.put_nowait(None)  # let stalled handlers end
        await runner.cleanup()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(http_read_timeout_seconds=READ_TIMEOUT)


async def _eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(HANG_BOUND):
        while not check():
            await asyncio.sleep(0.01)


async def _read(client: ServiceClient, chunks: int | None, then_raise: bool = False) -> None:
    """Open a stream, read ``chunks`` chunks (None: to the end), and leave (or raise)."""
    async with asyncio.timeout(HANG_BOUND):
        async with client.stream(
            SERVICE, "POST", "/api/stream", caller=CALLER, scopes={"x:read"}, json={}
        ) as opened:
            if chunks is None:
                _ = [chunk async for chunk in opened.chunks]
            for _ in range(chunks or 0):
                await anext(opened.chunks)
            if then_raise:
                raise TimeoutError("the caller's own deadline")


async def test_chunks_arrive_as_they_are_sent_with_the_internal_token(settings: Settings) -> None:
    async with serving(settings) as (callee, client):
        async with asyncio.timeout(HANG_BOUND):
            async with client.stream(
                SERVICE, "POST", "/api/stream", caller=CALLER, scopes={"x:read"}, json={"q": 1}
            ) as opened:
                assert opened.status == 200
                assert opened.headers["Content-Type"] == "text/event-stream"
                chunks = opened.chunks
                await callee.release.put(b"first\n\n")
                assert await anext(chunks) == b"first\n\n"
                # The last chunk is not sent yet: the first arrived on its own.
                assert callee.sent == [b"first\n\n"]
                await callee.release.put(b"last\n\n")
                assert await anext(chunks) == b"last\n\n"
                await callee.release.put(None)
                assert [chunk async for chunk in chunks] == []
        [seen] = callee.callers
        assert (seen.tenant_id, seen.key_id, seen.scopes) == ("t1", "k1", frozenset({"x:read"}))
        assert callee.bodies == [b'{"q":1}']


async def test_a_stalled_stream_times_out_per_read(settings: Settings) -> None:
    async with serving(settings) as (callee, client):
        await callee.release.put(b"first\n\n")  # then nothing, ever
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout):
            await _read(client, 2)
        assert asyncio.get_running_loop().time() - started < HANG_BOUND / 2
        await _eventually(lambda: callee.connections() == 0)


async def test_a_caller_timeout_inside_the_block_is_not_an_upstream_timeout(
    settings: Settings,
) -> None:
    async with serving(settings) as (callee, client):
        await callee.release.put(b"first\n\n")
        with pytest.raises(TimeoutError) as raised:
            await _read(client, 1, then_raise=True)
        assert not isinstance(raised.value, UpstreamTimeout)
        assert str(raised.value) == "the caller's own deadline"


async def test_stopping_early_closes_the_connection(settings: Settings) -> None:
    async with serving(settings) as (callee, client):
        await callee.release.put(b"chunk 0\n\n")  # more would follow
        async with asyncio.timeout(HANG_BOUND):
            async with client.stream(
                SERVICE, "POST", "/api/stream", caller=CALLER, scopes={"x:read"}, json={}
            ) as opened:
                assert await anext(opened.chunks) == b"chunk 0\n\n"
                assert callee.connections() == 1
            # Left with the body unfinished: the connection cannot go back to the
            # pool, so it must be closed (the server sees it go).
            await _eventually(lambda: callee.connections() == 0)


async def test_a_connection_dropped_mid_body_is_upstream_unavailable(settings: Settings) -> None:
    async with serving(settings) as (callee, client):
        await callee.release.put(b"first\n\n")
        await callee.release.put(DROP)
        with pytest.raises(UpstreamUnavailable):
            await _read(client, None)
        assert callee.sent == [b"first\n\n"]


async def test_in_process_leaving_a_fast_stream_early_does_not_hang() -> None:
    """The app fills the hand-over queue while the reader stops after one chunk."""
    chunks_sent = 200  # far more than the queue holds

    async def fast_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(chunks_sent):
            await send({"type": "http.response.body", "body": b"%d;" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async with asyncio.timeout(HANG_BOUND):
        async with asgi_stream(
            fast_app,
            base_url="http://svc.internal",
            method="GET",
            path="/",
            headers={},
            body=b"",
            read_timeout=READ_TIMEOUT,
        ) as opened:
            assert await anext(opened.chunks) == b"0;"
            # The app runs ahead, fills the queue again and waits for room that
            # never comes: leaving must still end it.
            await asyncio.sleep(0.05)
