"""A fast fake OpenAI-compatible upstream for ``bench/ai_gateway.py``.

Raw asyncio on uvloop with the httptools parser (what uvicorn uses), one process,
so that it costs the 2-core machine as little CPU as possible and is never the
bottleneck of the gateway it stands behind. It answers:

* ``POST /v1/chat/completions``: the same small ``chat.completion`` with ``usage``
  every time (the request body is read and ignored, streaming is not supported);
* ``GET /health``: 200, for the runner's readiness check;
* ``GET /stats``: ``{"calls": N}``, the chat completions answered so far.

    python bench/fake_upstream.py --port 8123     # 127.0.0.1 only
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import cast

import httptools
import uvloop

__all__ = ["ANSWER_TEXT", "COMPLETION", "MODEL", "completion_response"]

HOST = "127.0.0.1"
MODEL = "fake-chat-1"
ANSWER_TEXT = "yoga app keywords: yoga for beginners, home yoga, daily stretch, calm breathing"
COMPLETION: dict[str, object] = {
    "id": "chatcmpl-fake",
    "object": "chat.completion",
    "created": 1_764_115_200,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": ANSWER_TEXT},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 14, "total_tokens": 26},
}


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def completion_response() -> bytes:
    """The whole HTTP response to every chat completion, built once."""
    return _response("200 OK", json.dumps(COMPLETION, separators=(",", ":")).encode())


_COMPLETION = completion_response()
_HEALTH = _response("200 OK", b'{"status":"ok"}')
_NOT_FOUND = _response("404 Not Found", b'{"error":"not found"}')


class _Stats:
    calls = 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection; pipelined requests are answered in order."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None:
            return
        method = self._parser.get_method()
        if method == b"POST" and self._url == b"/v1/chat/completions":
            _Stats.calls += 1
            transport.write(_COMPLETION)
        elif method == b"GET" and self._url == b"/health":
            transport.write(_HEALTH)
        elif method == b"GET" and self._url == b"/stats":
            transport.write(_response("200 OK", json.dumps({"calls": _Stats.calls}).encode()))
        else:
            transport.write(_NOT_FOUND)
        if not self._parser.should_keep_alive():
            transport.close()


async def serve(port: int) -> None:
    """Serve on ``127.0.0.1:port`` until the process is stopped."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        uvloop.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
