"""uvicorn's httptools protocol with the limits a server met directly by clients needs.

``LimitedHttpToolsProtocol`` keeps uvicorn's ``HttpToolsProtocol`` (and its C
parser) and adds, per request, two method overrides with a few integer and dict
operations; see ``xynergy.platform.serving`` for why this server, measured.

* **head size**: bytes received while a request head (request line and headers)
  is incomplete are counted per read; past ``max_head_bytes`` the client gets 431
  and the connection closes. Memory per connection stays within the limit plus
  one read from the socket, whatever the client streams.
* **head deadline**: one total deadline per head, from the connection's start
  (first request) or the request's first byte (later ones), not per line: a
  client sending one header line a second is cut at the deadline all the same
  (408, or a silent close if it sent nothing). One timer per server walks the
  heads in start order (``ConnectionBook``), so no timer is armed per request.
* **connections**: at most ``max_connections`` per process and
  ``max_connections_per_client`` per peer address (the TCP peer, never a
  forwarded header; IPv6 per prefix; trusted proxies exempt). A connection over
  the per-client cap is answered 503 and closed at once, freeing its file
  descriptor. At the process cap the connection that has waited longest for its
  head (slow clients first), else an idle keep-alive one, is closed to make room;
  when every connection is busy the new one gets 503.
* **idle keep-alive**: uvicorn's own timeout (``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.server import ServerState

from xynergy.platform.http_limits import ConnectionBook, ServerLimits

__all__ = ["LimitedHttpToolsProtocol", "limited_protocol"]

# ": " and CRLF around every header on the wire (the parser hands over names and
# values only).
_HEADER_LINE_OVERHEAD = 4


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with head size and time limits and connection caps."""

    book: ClassVar[ConnectionBook]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # uvicorn's own set-up (a parser, loggers, flow control) waits until the
        # connection is admitted: under a connection flood a refusal costs little.
        self._setup = (config, server_state, app_state, _loop)
        self._admitted = False
        self._client_key: str | None = None
        self._upgraded = False
        # Bytes received belong to a request head that is not complete yet.
        self._in_head = False
        self._head_bytes = 0
        self._head_over = False
        # The head's deadline runs (it is in the book's heads). A head that
        # arrives in one read, as most do, never needs one.
        self._timed = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        book = self.book
        config, server_state, app_state, loop = self._setup
        peer = get_remote_addr(transport)
        key = book.client_key(peer[0]) if peer is not None else None
        if key is not None and not book.admit(key):
            _refuse(transport, book)
            return
        connections = server_state.connections
        if len(connections) >= book.limits.max_connections and not book.make_room(connections):
            if key is not None:
                book.release(key)
            book.note_refusal("process")
            _refuse(transport, book)
            return
        HttpToolsProtocol.__init__(self, config, server_state, app_state, loop)
        self._admitted = True
        self._client_key = key
        HttpToolsProtocol.connection_made(self, transport)
        # The first head's deadline runs from the connection's start.
        self._in_head = True
        self._time_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._forget()
            HttpToolsProtocol.connection_lost(self, exc)

    # The two methods below run on every request: plain calls to the base class
    # (no super()), no timer, no clock read unless a head spans reads.
    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            cycle = self.cycle
            # Bytes after a finished exchange start the next head.
            if cycle is None or (cycle.response_complete and not cycle.more_body):
                self._in_head = True
                self._head_bytes = 0
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.book.limits.max_head_bytes:
                self._head_over = True
        HttpToolsProtocol.data_received(self, data)
        if self._in_head:
            if self._head_over:
                # Past the limit and still no complete head: it will not fit.
                self._end(self.book.too_large.wire)
            elif not self._timed:
                # The head spans reads: its deadline runs from now.
                self._time_head()
        elif self.cycle is not None and self.scope is not self.cycle.scope and not self._upgraded:
            # A pipelined request began behind the one being answered; its head
            # is counted from the next read.
            self._in_head = True
            self._head_bytes = 0
            self._time_head()

    def on_headers_complete(self) -> None:
        if self._in_head:
            self._in_head = False
            if self._timed:
                self._timed = False
                self.book.heads.pop(self, None)
            if self._head_over:
                self._head_over = False
                if self._head_size() > self.book.limits.max_head_bytes:
                    # The head completed in the read that crossed the limit: answer
                    # 431 through uvicorn's own cycle, as for limit_concurrency.
                    app, self.app = self.app, self.book.too_large
                    try:
                        HttpToolsProtocol.on_headers_complete(self)
                    finally:
                        self.app = app
                    return
        HttpToolsProtocol.on_headers_complete(self)

    def handle_websocket_upgrade(self) -> None:
        key, self._client_key = self._client_key, None
        self._forget()
        self._upgraded = True
        HttpToolsProtocol.handle_websocket_upgrade(self)
        if key is not None:
            # The WebSocket protocol owns the transport now: the client's slot is
            # released when that one closes.
            upgraded = self.transport.get_protocol()
            release = _releasing(upgraded.connection_lost, self.book, key)
            upgraded.connection_lost = release  # type: ignore[method-assign,assignment]

    def head_timed_out(self) -> None:
        """Called by the book when the head deadline passes."""
        self._timed = False
        self._end(self.book.timed_out.wire if self._head_bytes else None)

    def evict(self) -> None:
        """Called by the book to make room at the process cap."""
        self._timed = False
        self._unset_keepalive_if_required()
        self._end(None)
        if self.transport.is_closing():
            # Its slot is free now, not when the loop gets to connection_lost:
            # a burst of new connections must not count it again.
            self.connections.discard(self)

    def is_idle(self) -> bool:
        """Between requests of a keep-alive connection."""
        return self.timeout_keep_alive_task is not None and not self.transport.is_closing()

    def _time_head(self) -> None:
        self._timed = True
        self.book.await_head(self, self.loop)

    def _head_size(self) -> int:
        headers = self.headers or []
        return len(self.url) + sum(len(n) + len(v) + _HEADER_LINE_OVERHEAD for n, v in headers)

    def _end(self, response: bytes | None) -> None:
        """Close now with ``response``, or after the response in progress without one."""
        self._forget_head()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head behind a response being sent: finish that one, then close.
            cycle.keep_alive = False
            self.transport.pause_reading()
            return
        if response is not None:
            self.transport.write(response)
        self.transport.close()

    def _forget_head(self) -> None:
        self._in_head = self._head_over = False
        if self._timed:
            self._timed = False
            self.book.heads.pop(self, None)

    def _forget(self) -> None:
        self._forget_head()
        key, self._client_key = self._client_key, None
        if key is not None:
            self.book.release(key)


def _refuse(transport: asyncio.Transport, book: ConnectionBook) -> None:
    # Never counted in the server's connections: a burst of refusals cannot push
    # the process count over the cap and evict other clients' connections.
    transport.write(book.busy.wire)
    transport.close()


def _releasing(
    connection_lost: Callable[[Exception | None], None], book: ConnectionBook, key: str
) -> Callable[[Exception | None], None]:
    def release_then_lose(exc: Exception | None) -> None:
        try:
            connection_lost(exc)
        finally:
            book.release(key)

    return release_then_lose


def limited_protocol(limits: ServerLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for one server: its connections share one ``ConnectionBook``."""
    bound = type(
        "BoundLimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"book": ConnectionBook(limits)},
    )
    return cast(type[LimitedHttpToolsProtocol], bound)
