"""``xynergy serve`` against hostile clients: a real server process on a loopback port.

Issue 10, items 1 and 2: bounded request heads (size and total time), connection
caps per process and per client address, idle keep-alive timeout, and other
clients served during a slow-connection flood. Loopback source addresses
127.0.0.x play distinct clients.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import LiveServer, live_server
from tests.platform.hostile_clients import (
    Latencies,
    connect_from,
    fd_count,
    get,
    loopback_sources,
    read_response,
    read_until_closed,
    rss_bytes,
    slow_flood,
)

MIB = 1_048_576
HEAD_TIMEOUT_SECONDS = 2.0
KEEP_ALIVE_SECONDS = 1
MAX_HEAD_BYTES = 32_768
PER_CLIENT_CAP = 16
PROCESS_CAP = 200
# uvicorn's own keep-alive timeout, which a reverted fix would fall back to.
UVICORN_DEFAULT_KEEP_ALIVE_SECONDS = 5
# Generous: the box is shared; these bound "eventually", not speed.
LATENCY_BOUND_SECONDS = 5.0
ATTACK_SECONDS = 8.0
# Accepts in flight, the listening socket, database and log files beyond the cap.
FD_SLACK = 64
# 3,000 slow sockets by default; XYNERGY_TEST_FLOOD_SOCKETS=20400 reproduces the
# audit's attack (spread over processes: one process may hold ~20k descriptors).
FLOOD_SOCKETS = int(os.environ.get("XYNERGY_TEST_FLOOD_SOCKETS", "3000"))
FLOOD_SOURCES = 30
FLOOD_SOCKETS_PER_PROCESS = 8000
FLOOD_LINE_INTERVAL_SECONDS = 1.0


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Short head deadline and keep-alive timeout."""
    env = {
        "XYNERGY_SERVER_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_SECONDS),
        "XYNERGY_SERVER_KEEP_ALIVE_TIMEOUT_SECONDS": str(KEEP_ALIVE_SECONDS),
        "XYNERGY_SERVER_MAX_HEAD_BYTES": str(MAX_HEAD_BYTES),
    }
    with live_server(env, data_dir=tmp_path_factory.mktemp("quick")) as server:
        yield server


@dataclass(frozen=True)
class Capped:
    """A server with small connection caps, and its descriptor count when idle."""

    server: LiveServer
    idle_fds: int


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capped]:
    """Small connection caps; head deadline and keep-alive longer than any test here."""
    env = {
        "XYNERGY_SERVER_MAX_CONNECTIONS": str(PROCESS_CAP),
        "XYNERGY_SERVER_MAX_CONNECTIONS_PER_CLIENT": str(PER_CLIENT_CAP),
        "XYNERGY_SERVER_HEAD_TIMEOUT_SECONDS": "60",
        "XYNERGY_SERVER_KEEP_ALIVE_TIMEOUT_SECONDS": "60",
    }
    with live_server(env, data_dir=tmp_path_factory.mktemp("capped")) as server:
        yield Capped(server, fd_count(server.pid))


def _address(server: LiveServer) -> tuple[str, int]:
    return server.host, server.port


def _stream_huge_header(server: tuple[str, int], source: str, total: int) -> bytes:
    """Send a head whose one header is ``total`` bytes; return what the server answered."""
    chunk = b"a" * MIB
    deadline = time.monotonic() + 60
    with connect_from(source, server) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Huge: ")
            for _ in range(total // MIB):
                if time.monotonic() > deadline:
                    break
                sock.sendall(chunk)
        except OSError:
            pass  # hung up mid-stream (or stopped reading): what it said is read below
        try:
            answer, _reset = read_until_closed(sock)
        except TimeoutError:
            answer = b""
    return answer


class TestHeadSize:
    def test_four_64_mib_headers_get_431_and_memory_stays_bounded(self, quick: LiveServer) -> None:
        before = quick.rss_bytes()
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_bytes(quick.pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                answers = list(
                    pool.map(
                        lambda n: _stream_huge_header(
                            _address(quick), f"127.0.0.{10 + n}", 64 * MIB
                        ),
                        range(4),
                    )
                )
        finally:
            stop.set()
            sampler.join()
        growth = peak - before
        print(  # noqa: T201 - the figure the issue asks for, shown with -s
            f"\nRSS before {before / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB (+{growth / MIB:.1f})"
        )
        assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [
            b"HTTP/1.1 431 Request Header Fields Too Large"
        ] * 4
        assert growth < 50 * MIB

    def test_a_head_just_over_the_limit_in_one_read_gets_431(self, quick: LiveServer) -> None:
        padding = b"b" * MAX_HEAD_BYTES
        with connect_from("127.0.0.14", _address(quick)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Pad: " + padding + b"\r\n\r\n")
            answer, _reset = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b'"error":"request_header_fields_too_large"' in answer

    def test_a_head_under_the_limit_is_served(self, quick: LiveServer) -> None:
        padding = b"c" * (MAX_HEAD_BYTES // 2)
        with connect_from("127.0.0.14", _address(quick)) as sock:
            request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Pad: "
            sock.sendall(request + padding + b"\r\n\r\n")
            answer, _reset = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 200 ")


class TestHeadDeadline:
    def test_a_header_line_every_half_second_is_cut_at_the_total_deadline(
        self, quick: LiveServer
    ) -> None:
        lines_sent = 0
        with connect_from("127.0.0.15", _address(quick)) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            sock.settimeout(0.5)
            answer = b""
            # Each line arrives well within any per-line timeout; 20 lines take 10 s.
            while lines_sent < 20:
                try:
                    answer = sock.recv(65_536)
                    break  # the server answered or closed
                except TimeoutError:
                    pass
                try:
                    sock.sendall(b"X-Slow: one more line\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    break
                lines_sent += 1
            cut_after = time.monotonic() - started
        print(f"\ncut after {cut_after:.2f} s and {lines_sent} lines")  # noqa: T201
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert (
            HEAD_TIMEOUT_SECONDS * 0.9 <= cut_after < HEAD_TIMEOUT_SECONDS + LATENCY_BOUND_SECONDS
        )

    def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(
        self, quick: LiveServer
    ) -> None:
        with connect_from("127.0.0.15", _address(quick)) as sock:
            started = time.monotonic()
            answer, _reset = read_until_closed(sock)
            closed_after = time.monotonic() - started
        assert answer == b""
        assert closed_after < HEAD_TIMEOUT_SECONDS + LATENCY_BOUND_SECONDS


class TestKeepAlive:
    def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(
        self, quick: LiveServer
    ) -> None:
        with connect_from("127.0.0.16", _address(quick)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            first = read_response(sock)
            answered = time.monotonic()
            rest, _reset = read_until_closed(sock)
            idle_for = time.monotonic() - answered
        assert first.startswith(b"HTTP/1.1 200 ")
        assert rest == b""
        assert KEEP_ALIVE_SECONDS * 0.9 <= idle_for < UVICORN_DEFAULT_KEEP_ALIVE_SECONDS


class TestPerClientCap:
    def test_connections_over_the_cap_are_closed_while_other_clients_are_served(
        self, capped: Capped
    ) -> None:
        server = _address(capped.server)
        held = [connect_from("127.0.0.2", server) for _ in range(PER_CLIENT_CAP)]
        try:
            extra_answers = []
            for _ in range(4):
                with connect_from("127.0.0.2", server) as extra:
                    extra_answers.append(read_until_closed(extra)[0].split(b"\r\n", 1)[0])
            others = Latencies()
            for _ in range(20):
                status, seconds = get("127.0.0.3", server)
                if status == 200:
                    others.seconds.append(seconds)
                else:
                    others.failures += 1
        finally:
            for sock in held:
                sock.close()
        print(f"\n127.0.0.3 while 127.0.0.2 is at its cap: {others.summary()}")  # noqa: T201
        assert extra_answers == [b"HTTP/1.1 503 Service Unavailable"] * 4
        assert others.success_rate == 1.0
        # The slots came back when the held connections closed.
        assert _eventually_served("127.0.0.2", server)


def _eventually_served(source: str, server: tuple[str, int]) -> bool:
    deadline = time.monotonic() + LATENCY_BOUND_SECONDS
    while time.monotonic() < deadline:
        if get(source, server)[0] == 200:
            return True
        time.sleep(0.05)
    return False


class TestProcessCap:
    def test_at_the_cap_the_connection_waiting_longest_for_its_head_makes_room(
        self, capped: Capped
    ) -> None:
        server = _address(capped.server)
        held: list[socket.socket] = []
        try:
            # 13 clients x 16 (their cap): past the process cap of 200.
            for source in loopback_sources(20, PROCESS_CAP // PER_CLIENT_CAP + 1):
                held += [connect_from(source, server) for _ in range(PER_CLIENT_CAP)]
            status, _seconds = get("127.0.0.4", server)
            held[0].settimeout(LATENCY_BOUND_SECONDS)
            oldest_closed = read_until_closed(held[0])[0] == b""
        finally:
            for sock in held:
                sock.close()
        assert len(held) > PROCESS_CAP
        assert status == 200
        assert oldest_closed

    def test_at_the_cap_with_no_head_waiting_an_idle_connection_makes_room(
        self, capped: Capped
    ) -> None:
        server = _address(capped.server)
        request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
        sources = loopback_sources(40, PROCESS_CAP // PER_CLIENT_CAP)
        held: list[socket.socket] = []
        try:
            # Up to the cap exactly: 12 clients x 16, then 8 from one more client.
            for source in sources:
                held += [connect_from(source, server) for _ in range(PER_CLIENT_CAP)]
            held += [connect_from("127.0.0.60", server) for _ in range(PROCESS_CAP - len(held))]
            # All served at once (fast, so no keep-alive timeout can be what closes
            # one below), then idle on keep-alive.
            for sock in held:
                sock.sendall(request)
            answers = [read_response(sock) for sock in held]
            closed_before, _, _ = select.select(held, [], [], 0)
            status, _seconds = get("127.0.0.5", server)
            # Closed before the new connection was even read from, so already here;
            # the wait only absorbs scheduling.
            readable, _, _ = select.select(held, [], [], 1.0)
            closed = sum(sock.recv(1) == b"" for sock in readable)
        finally:
            for sock in held:
                sock.close()
        assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers)
        assert closed_before == []
        assert status == 200
        assert closed == 1


class TestSlowConnectionFlood:
    def test_other_clients_are_served_and_descriptors_stay_under_the_cap(
        self, capped: Capped
    ) -> None:
        server = _address(capped.server)
        pid = capped.server.pid
        peak_fds = fd_count(pid)
        legit = Latencies()
        sources = loopback_sources(100, FLOOD_SOURCES)
        per_source = FLOOD_SOCKETS // FLOOD_SOURCES
        processes = -(-FLOOD_SOCKETS // FLOOD_SOCKETS_PER_PROCESS)
        with slow_flood(
            sources,
            per_source,
            server,
            line_interval=FLOOD_LINE_INTERVAL_SECONDS,
            max_seconds=ATTACK_SECONDS * 4,
            processes=processes,
        ) as flood:
            ends = time.monotonic() + ATTACK_SECONDS
            while time.monotonic() < ends:
                status, seconds = get("127.0.0.250", server)
                if status == 200:
                    legit.seconds.append(seconds)
                else:
                    legit.failures += 1
                peak_fds = max(peak_fds, fd_count(pid))
                time.sleep(0.02)
        print(  # noqa: T201 - the figure the issue asks for, shown with -s
            f"\nflood of {flood.sockets} slow sockets from {len(sources)} addresses "
            f"({flood.opened} connections, {flood.closed_by_server} cut by the server); "
            f"legit: {legit.summary()}; server fds {capped.idle_fds} idle -> peak {peak_fds}"
        )
        assert legit.attempts > 0
        assert legit.success_rate == 1.0
        assert legit.p99 < LATENCY_BOUND_SECONDS
        assert peak_fds <= capped.idle_fds + PROCESS_CAP + FD_SLACK


class TestConnectionCapFitsDescriptors:
    def test_the_cap_is_lowered_to_fit_the_descriptor_limit(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        import resource

        from xynergy.platform.config import Settings
        from xynergy.platform.serving import connection_cap

        monkeypatch.setattr(resource, "getrlimit", lambda _which: (4096, 4096))
        monkeypatch.setattr(resource, "setrlimit", lambda *_args: None)
        settings = Settings(
            data_dir=tmp_path, server_max_connections=10_000, server_reserved_fds=1024
        )
        assert connection_cap(settings) == 4096 - 1024

    def test_a_limit_below_twice_the_reserve_is_split_in_half(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        import resource

        from xynergy.platform.config import Settings
        from xynergy.platform.serving import connection_cap

        monkeypatch.setattr(resource, "getrlimit", lambda _which: (1100, 1100))
        monkeypatch.setattr(resource, "setrlimit", lambda *_args: None)
        settings = Settings(
            data_dir=tmp_path, server_max_connections=10_000, server_reserved_fds=1024
        )
        assert connection_cap(settings) == 550

    def test_the_soft_limit_is_raised_towards_the_hard_one(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        import resource

        from xynergy.platform.config import Settings
        from xynergy.platform.serving import connection_cap

        raised: list[tuple[int, int]] = []
        monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 100_000))
        monkeypatch.setattr(resource, "setrlimit", lambda _which, limits: raised.append(limits))
        settings = Settings(
            data_dir=tmp_path, server_max_connections=10_000, server_reserved_fds=1024
        )
        assert connection_cap(settings) == 10_000
        assert raised == [(11_024, 100_000)]
