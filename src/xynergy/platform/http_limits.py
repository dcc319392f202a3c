"""What the connections of one server share: limits, counts per client, heads in progress.

Used by ``LimitedHttpToolsProtocol`` (``http_protocol.py``); see that module for
what each limit does on a connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from xynergy.platform.logging import get_logger

__all__ = ["ConnectionBook", "Rejection", "ServerLimits"]

log = get_logger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The limits one server process enforces (from ``Settings``, see serving.py)."""

    max_head_bytes: int
    head_timeout_seconds: float
    max_connections: int
    max_connections_per_client: int
    ipv6_client_prefix: int
    trusted_proxies: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """An error answer sent below the ASGI app, in the platform's error shape."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    wire: bytes  # the whole HTTP/1.1 response, for a connection with no request cycle

    @classmethod
    def build(cls, status: int, code: str, detail: str) -> Rejection:
        """The answer ``status`` with body ``{"error": code, "detail": detail}``."""
        body = json.dumps(
            {"error": code, "detail": detail, "request_id": None}, separators=(",", ":")
        ).encode()
        headers = (
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        )
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode("ascii")]
        lines += [name + b": " + value for name, value in headers]
        return cls(status, headers, body, b"\r\n".join(lines) + b"\r\n\r\n" + body)

    async def __call__(self, _scope: Any, _receive: Any, send: Any) -> None:
        """As an ASGI app, for a request whose head uvicorn already parsed."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class Waiting(Protocol):
    """A connection the book may time out or close to make room."""

    def head_timed_out(self) -> None:
        """The head deadline passed."""

    def evict(self) -> None:
        """Close to make room for a new connection."""

    def is_idle(self) -> bool:
        """Between requests of a keep-alive connection."""


class ConnectionBook:
    """State shared by the connections of one server."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        # Entries are removed when a client's count drops to zero, so the dict
        # holds at most one entry per open connection (bounded by max_connections).
        self.per_client: dict[str, int] = {}  # guard: allow XG005 one per open connection at most
        # Connections waiting for a complete head -> deadline. Insertion order is
        # deadline order (one timeout for all), so the front is always due first.
        self.heads: dict[Waiting, float] = {}  # guard: allow XG005 open connections only
        self.refused: dict[str, int] = {}  # guard: allow XG005 keys are the two reasons in code
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Built once; each is written as is, per rejected connection.
        self.too_large = Rejection.build(
            431,
            "request_header_fields_too_large",
            f"The request line and headers exceed {limits.max_head_bytes} bytes.",
        )
        self.timed_out = Rejection.build(
            408,
            "request_timeout",
            f"The request head was not received within {limits.head_timeout_seconds:g} s.",
        )
        self.busy = Rejection.build(
            503, "too_many_connections", "Too many open connections; retry later."
        )

    def client_key(self, host: str) -> str | None:
        """What the per-client cap counts for peer ``host``; None for trusted proxies."""
        limits = self.limits
        if ":" not in host and not limits.trusted_proxies:
            return host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host
        if any(address in network for network in limits.trusted_proxies):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            # One host gets a whole /64 for free: count the prefix, not the address.
            prefix = ipaddress.IPv6Network((address, limits.ipv6_client_prefix), strict=False)
            return str(prefix)
        return host

    def admit(self, key: str) -> bool:
        """Count one more connection of client ``key``, unless it is at its cap."""
        count = self.per_client.get(key, 0)
        if count >= self.limits.max_connections_per_client:
            self.note_refusal("per_client")
            return False
        self.per_client[key] = count + 1
        return True

    def release(self, key: str) -> None:
        """One connection of client ``key`` closed."""
        count = self.per_client[key] - 1
        if count:
            self.per_client[key] = count
        else:
            del self.per_client[key]

    def note_refusal(self, reason: str) -> None:
        """Count a refusal; logged at the 1st, 2nd, 4th, 8th... of each reason, so a
        flood does not turn into a log flood."""
        count = self.refused.get(reason, 0) + 1
        self.refused[reason] = count
        if count & (count - 1) == 0:
            log.warning("http.connection_limited", reason=reason, total=count)

    def await_head(self, connection: Waiting, loop: asyncio.AbstractEventLoop) -> None:
        """Start ``connection``'s head deadline now."""
        deadline = loop.time() + self.limits.head_timeout_seconds
        self.heads[connection] = deadline
        if self._timer is None:
            self._loop = loop
            self._timer = loop.call_at(deadline, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        if self._loop is None:
            return
        now = self._loop.time()
        due: list[Waiting] = []
        for connection, deadline in self.heads.items():
            if deadline > now:
                self._timer = self._loop.call_at(deadline, self._sweep)
                break
            due.append(connection)
        for connection in due:
            del self.heads[connection]
            connection.head_timed_out()

    def make_room(self, connections: Iterable[Any]) -> bool:
        """Close the connection waiting longest for its head, else an idle keep-alive
        one among ``connections``; False when every connection is busy."""
        if self.heads:
            victim: Waiting = next(iter(self.heads))
            del self.heads[victim]
            victim.evict()
            return True
        # Idle connections are not tracked per request (that would cost every
        # request); this scan runs only at the cap with no head waiting.
        for connection in connections:
            is_idle = getattr(connection, "is_idle", None)
            if is_idle is not None and is_idle():
                connection.evict()
                return True
        return False
