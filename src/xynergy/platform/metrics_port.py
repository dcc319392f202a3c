"""``/metrics`` without a key, on a port bound to 127.0.0.1 only (``metrics_port``).

The main port serves ``/metrics`` only to keys holding ``metrics:read``. A
Prometheus running on the same host may instead scrape this listener, which only
local processes can reach. It answers ``GET /metrics`` and nothing else, one
request per connection, and is bounded like every other listener: at most
``metrics_port_max_connections`` connections at once (more are closed on
arrival), ``metrics_port_timeout_seconds`` for the whole exchange, and h11's own
cap on the size of a request head.
"""

from __future__ import annotations

import asyncio
import contextlib

import h11

from xynergy.platform.config import Settings
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import CONTENT_TYPE_LATEST, PlatformMetrics

__all__ = ["LOOPBACK", "MetricsPort"]

log = get_logger(__name__)

# Fixed on purpose, not a setting: the point of this listener is that nothing
# outside the machine can reach it without a key.
LOOPBACK = "127.0.0.1"
_PATH = b"/metrics"
# A read buffer size, not a limit: h11 bounds the request head.
_READ_CHUNK_BYTES = 65_536


class MetricsPort:
    """The loopback metrics listener of one Platform: started in ``open``, stopped in ``close``."""

    def __init__(self, settings: Settings, metrics: PlatformMetrics) -> None:
        self._metrics = metrics
        self._max_connections = settings.metrics_port_max_connections
        self._timeout = settings.metrics_port_timeout_seconds
        self._server: asyncio.Server | None = None
        # At most max_connections entries: a connection past the cap is never added.
        self._handlers: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, settings: Settings, metrics: PlatformMetrics) -> MetricsPort:
        """Listen on ``127.0.0.1:<metrics_port>``."""
        listener = cls(settings, metrics)
        listener._server = await asyncio.start_server(
            listener._handle, host=LOOPBACK, port=settings.metrics_port
        )
        log.info("metrics_port.listening", host=LOOPBACK, port=listener.port)
        return listener

    @property
    def port(self) -> int:
        """The port listened on."""
        if self._server is None:
            raise RuntimeError("the metrics port is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every (host, port) listened on (all on 127.0.0.1)."""
        if self._server is None:
            return []
        return [sock.getsockname()[:2] for sock in self._server.sockets]

    async def stop(self) -> None:
        """Stop listening and end the connections still open."""
        if self._server is None:
            return
        self._server.close()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        for handler in handlers:
            with contextlib.suppress(asyncio.CancelledError):
                await handler
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._handlers) >= self._max_connections:
            writer.close()
            return
        self._handlers.add(task)
        try:
            async with asyncio.timeout(self._timeout):
                await self._answer(reader, writer)
        except (TimeoutError, OSError, h11.ProtocolError):
            pass  # a slow, broken or oversized request: just drop the connection
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        event = connection.next_event()
        while event is h11.NEED_DATA:
            connection.receive_data(await reader.read(_READ_CHUNK_BYTES))
            event = connection.next_event()
        if not isinstance(event, h11.Request):
            return
        if event.method == b"GET" and event.target.split(b"?", 1)[0] == _PATH:
            status, content_type, body = 200, CONTENT_TYPE_LATEST, self._metrics.render()
        else:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
        writer.write(connection.send(h11.Response(status_code=status, headers=headers)) or b"")
        writer.write(connection.send(h11.Data(data=body)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()
