"""Streamed answers of another service, in process or over the network.

``httpx.ASGITransport`` runs the app to completion and buffers the whole body
before it returns, so an SSE answer from a mounted service would arrive all at
once at its end. :func:`asgi_stream` runs the app in a task of its own instead
and hands its body chunks over through a bounded queue as they are sent (the
app waits when the reader is slower: back-pressure, not growth). Leaving the
block cancels the app's task, which sees a disconnect, as over a network.

:func:`network_stream` is the same over aiohttp, each read bounded. Either way
only the call's own failures become the platform's errors: whatever the
caller's code raises inside the block passes through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from starlette.types import ASGIApp, Message

from xynergy.platform.exceptions import UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.logging import get_logger

__all__ = ["ServiceStream", "asgi_stream", "network_stream"]

log = get_logger(__name__)

# ASGI messages buffered between the app and the reader: a handful of chunks is
# enough to keep both busy; more would only hold memory.
_QUEUE_MESSAGES = 16
_ERROR_BODY_MAX = 65_536
_END: Message = {"type": "xynergy.end"}


@dataclass(slots=True)
class ServiceStream:
    """A streamed answer: status and headers now, the body as it comes."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]

    async def read(self, limit: int = _ERROR_BODY_MAX) -> bytes:
        """The rest of the body, up to ``limit`` bytes (for error answers)."""
        body = bytearray()
        async for chunk in self.chunks:
            body += chunk
            if len(body) >= limit:
                break
        return bytes(body[:limit])


def _scope(
    base_url: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None,
) -> dict[str, Any]:
    base = urlsplit(base_url)
    port = base.port or (443 if base.scheme == "https" else 80)
    raw_headers = [(b"host", base.netloc.encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": base.scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(params or {}).encode(),
        "root_path": "",
        "headers": raw_headers,
        "server": (base.hostname or "", port),
        "client": ("127.0.0.1", 0),
    }


@asynccontextmanager
async def asgi_stream(
    app: ASGIApp,
    *,
    base_url: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    read_timeout: float,
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[ServiceStream]:
    """Call ``app`` in process and yield its answer while it is still being sent.

    Raises:
        UpstreamTimeout: no status within ``read_timeout``, or a chunk later.
        UpstreamUnavailable: the app failed before it answered.
    """
    messages: asyncio.Queue[Message] = asyncio.Queue(_QUEUE_MESSAGES)
    finished = asyncio.Event()
    app_ended = asyncio.Event()
    complete = asyncio.Event()
    request_sent = False

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def run() -> None:
        try:
            await app(_scope(base_url, method, path, headers, params), receive, messages.put)
        finally:
            # Never wait here: after the reader left, the queue may be full and
            # nobody drains it, so waiting would outlive the cancel and hang the
            # block's exit. A reader finding the queue empty after the end is told.
            app_ended.set()
            with contextlib.suppress(asyncio.QueueFull):
                messages.put_nowait(_END)

    task = asyncio.create_task(run(), name=f"service-stream {method} {path}")

    async def next_message() -> Message:
        if messages.empty() and app_ended.is_set():
            return _END
        try:
            async with asyncio.timeout(read_timeout):
                return await messages.get()
        except TimeoutError as exc:
            raise UpstreamTimeout() from exc

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            message = await next_message()
            if message["type"] != "http.response.body":
                return  # the app ended (or failed) without finishing its body
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body", False):
                complete.set()
                return

    try:
        start = await next_message()
        if start["type"] != "http.response.start":
            raise UpstreamUnavailable(f"The service at {path} failed before it answered.")
        answer_headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", ())
        }
        yield ServiceStream(start["status"], answer_headers, chunks())
    finally:
        finished.set()
        if complete.is_set():
            # Answered in full: let the app finish what follows its last chunk
            # (middleware, metrics) rather than cancel it.
            await asyncio.wait([task], timeout=read_timeout)
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            log.warning("service_stream.app_failed", path=path, error=repr(task.exception()))


async def _network_chunks(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except TimeoutError as exc:  # aiohttp's per-read timeout
        raise UpstreamTimeout() from exc
    except aiohttp.ClientError as exc:  # e.g. the connection dropped mid-body
        raise UpstreamUnavailable() from exc


@asynccontextmanager
async def network_stream(
    session: aiohttp.ClientSession,
    *,
    url: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    connect_timeout: float,
    read_timeout: float,
) -> AsyncIterator[ServiceStream]:
    """Call ``url`` and yield its answer while it is still being sent.

    Leaving the block before the body's end closes the connection (it cannot be
    reused with the rest unread); after the end, it goes back to the pool.

    Raises:
        UpstreamTimeout: no connection, status or next chunk within the timeouts.
        UpstreamUnavailable: the connection failed.
    """
    # No total timeout: a stream lasts as long as the answer; each read is bounded.
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
    try:
        response = await session.request(method, url, headers=headers, data=body, timeout=timeout)
    except TimeoutError as exc:
        raise UpstreamTimeout() from exc
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable() from exc
    # Not ``async with``-ing the request: its exit would also rewrite the caller's
    # own errors raised inside the block as the platform's.
    chunks = _network_chunks(response)
    try:
        yield ServiceStream(response.status, dict(response.headers), chunks)
    finally:
        await chunks.aclose()
        response.release()
