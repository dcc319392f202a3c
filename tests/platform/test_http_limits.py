"""``LimitedHttpToolsProtocol`` and its ``ConnectionBook``, on an in-process uvicorn.

The hostile-client scenarios run against a real ``xynergy serve`` process in
``test_server_limits.py``; here: how clients are keyed, that ordinary HTTP
(pipelining, bodies, WebSockets) still works under the limits, and that every
slot is given back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.sync.client import connect as ws_connect

from tests.live_server import free_port
from tests.platform.hostile_clients import connect_from, read_response, read_until_closed
from xynergy.platform.http_limits import ConnectionBook, Rejection, ServerLimits
from xynergy.platform.http_protocol import LimitedHttpToolsProtocol, limited_protocol

MAX_HEAD_BYTES = 4096
START_TIMEOUT_SECONDS = 10.0


def _limits(**overrides: Any) -> ServerLimits:
    values: dict[str, Any] = {
        "max_head_bytes": MAX_HEAD_BYTES,
        "head_timeout_seconds": 30.0,
        "max_connections": 100,
        "max_connections_per_client": 8,
        "ipv6_client_prefix": 64,
    }
    return ServerLimits(**(values | overrides))


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        if message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text") or ""})
            await receive()  # the client's close
        return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = f"{scope['path']} {len(body)}".encode()
    headers = [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def served() -> Iterator[tuple[tuple[str, int], type[LimitedHttpToolsProtocol]]]:
    """An in-process uvicorn with the limited protocol on a free loopback port."""
    protocol = limited_protocol(_limits())
    port = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, http=protocol, lifespan="off")
    config.log_config = None
    server = uvicorn.Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),))
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    try:
        assert server.started
        yield ("127.0.0.1", port), protocol
    finally:
        server.should_exit = True
        thread.join()


def _settled(book: ConnectionBook) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not book.per_client and not book.heads:
            return True
        time.sleep(0.01)
    return False


class TestClientKey:
    @pytest.mark.parametrize(
        ("peer", "key"),
        [
            ("203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("10.0.0.5", None),  # a trusted proxy
            ("fd00::9", None),
        ],
    )
    def test_peers_are_counted_by_address_or_prefix(self, peer: str, key: str | None) -> None:
        proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
        book = ConnectionBook(_limits(trusted_proxies=proxies))
        assert book.client_key(peer) == key


class TestRejection:
    def test_the_wire_form_is_a_complete_response_in_the_platform_shape(self) -> None:
        rejection = Rejection.build(431, "request_header_fields_too_large", "Too long.")
        head, _, body = rejection.wire.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert b"connection: close" in head
        assert f"content-length: {len(body)}".encode() in head
        assert body == (
            b'{"error":"request_header_fields_too_large","detail":"Too long.","request_id":null}'
        )


class TestOrdinaryTraffic:
    def test_pipelined_requests_are_all_answered(
        self, served: tuple[tuple[str, int], type[LimitedHttpToolsProtocol]]
    ) -> None:
        address, protocol = served
        with connect_from("127.0.0.21", address) as sock:
            sock.sendall(
                b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            received = b""
            while received.count(b"HTTP/1.1 200 ") < 2 or not received.endswith(b"/two 0"):
                chunk = sock.recv(65_536)
                if not chunk:
                    break
                received += chunk
        first, second = received.split(b"HTTP/1.1 200 ")[1:]
        assert first.endswith(b"/one 0")
        assert second.endswith(b"/two 0")
        assert _settled(protocol.book)

    def test_a_body_larger_than_the_head_limit_in_the_same_read_is_not_a_head(
        self, served: tuple[tuple[str, int], type[LimitedHttpToolsProtocol]]
    ) -> None:
        address, protocol = served
        body = b"x" * (MAX_HEAD_BYTES * 4)
        head = f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n"
        with connect_from("127.0.0.22", address) as sock:
            # Twice on one connection: the second head follows a finished exchange.
            for _ in range(2):
                sock.sendall(head.encode() + body)
                assert read_response(sock).endswith(f"/upload {len(body)}".encode())
        assert _settled(protocol.book)

    def test_a_head_over_the_limit_on_a_keep_alive_connection_gets_431(
        self, served: tuple[tuple[str, int], type[LimitedHttpToolsProtocol]]
    ) -> None:
        address, protocol = served
        with connect_from("127.0.0.23", address) as sock:
            sock.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).endswith(b"/first 0")
            sock.sendall(b"GET /second HTTP/1.1\r\nX-Pad: " + b"p" * MAX_HEAD_BYTES + b"\r\n\r\n")
            answer, _reset = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert _settled(protocol.book)

    def test_a_websocket_gives_its_client_slot_back_when_it_closes(
        self, served: tuple[tuple[str, int], type[LimitedHttpToolsProtocol]]
    ) -> None:
        (host, port), protocol = served
        # The slot must outlive the upgrade: seen while the socket is open.
        source = socket.create_connection((host, port), source_address=("127.0.0.24", 0))
        with ws_connect(f"ws://{host}:{port}/ws", sock=source) as websocket:
            assert protocol.book.per_client == {"127.0.0.24": 1}
            websocket.send("hello")
            assert websocket.recv(timeout=START_TIMEOUT_SECONDS) == "hello"
        assert _settled(protocol.book)
