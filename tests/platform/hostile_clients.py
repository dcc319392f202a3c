"""Raw-socket clients for the server-limit tests: legit requests, slow heads, floods.

Every socket binds a loopback source address first, so 127.0.0.2, 127.0.0.3, ...
play distinct clients of a server on 127.0.0.1. Everything here is bounded in
count and time and closes what it opens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "Flood",
    "Latencies",
    "connect_from",
    "fd_count",
    "get",
    "read_response",
    "read_until_closed",
    "slow_flood",
]

SOCKET_TIMEOUT_SECONDS = 10.0
REPO_ROOT = Path(__file__).resolve().parents[2]
_READ_SIZE = 65_536


def connect_from(
    source: str, server: tuple[str, int], timeout: float = SOCKET_TIMEOUT_SECONDS
) -> socket.socket:
    """A TCP connection to ``server`` from loopback address ``source``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(server)
    except OSError:
        sock.close()
        raise
    return sock


def read_until_closed(sock: socket.socket, limit: int = 1_048_576) -> tuple[bytes, bool]:
    """What the peer sends until it closes (or ``limit`` bytes); and whether it reset."""
    received = bytearray()
    try:
        while len(received) < limit:
            chunk = sock.recv(_READ_SIZE)
            if not chunk:
                return bytes(received), False
            received += chunk
    except ConnectionResetError:
        return bytes(received), True
    return bytes(received), False


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a ``content-length`` (head and body); for one request
    at a time (bytes of a next response in the same read are not kept apart)."""
    received = bytearray()
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(_READ_SIZE)
        if not chunk:
            return bytes(received)
        received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(_READ_SIZE)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def get(source: str, server: tuple[str, int], path: str = "/healthz") -> tuple[int, float]:
    """``GET path`` on a new connection from ``source``: status and seconds taken."""
    started = time.perf_counter()
    with connect_from(source, server) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        answer, _reset = read_until_closed(sock)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, time.perf_counter() - started


def fd_count(pid: int) -> int:
    """Open file descriptors of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Latencies:
    """Outcomes of legit requests made during an attack."""

    seconds: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def attempts(self) -> int:
        """Requests made."""
        return len(self.seconds) + self.failures

    @property
    def success_rate(self) -> float:
        """Share of requests answered 200."""
        return len(self.seconds) / self.attempts if self.attempts else 0.0

    @property
    def p99(self) -> float:
        """99th percentile of the successful requests' seconds (0 when none)."""
        ordered = sorted(self.seconds) or [0.0]
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def summary(self) -> str:
        """``n``, success rate, median and p99 in ms."""
        median = statistics.median(self.seconds) if self.seconds else 0.0
        return (
            f"{self.attempts} requests, success {self.success_rate:.1%}, "
            f"median {median * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms"
        )


@dataclass
class Flood:
    """Counters of a slow-client flood, summed over its processes when it ends."""

    sockets: int
    opened: int = 0
    closed_by_server: int = 0
    connect_errors: int = 0


async def _slow_client(
    source: str,
    server: tuple[str, int],
    line_interval: float,
    stop: asyncio.Event,
    flood: Flood,
) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(*server, local_addr=(source, 0))
        except OSError:
            flood.connect_errors += 1
            await _pause(stop, line_interval)
            continue
        flood.opened += 1
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(_READ_SIZE), line_interval)
                except TimeoutError:
                    writer.write(b"X-Slow: one more line\r\n")
                    continue
                if not data:
                    flood.closed_by_server += 1
                    break
        except OSError:
            flood.closed_by_server += 1
        finally:
            writer.close()
        # Like a slowloris tool: come back after a pause when the server hung up.
        await _pause(stop, line_interval)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _flood(arguments: argparse.Namespace) -> Flood:
    host, port = arguments.server.rsplit(":", 1)
    sources = arguments.sources.split(",")
    flood = Flood(sockets=len(sources) * arguments.per_source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(arguments.max_seconds, stop.set)
    tasks = [
        asyncio.create_task(
            _slow_client(source, (host, int(port)), arguments.line_interval, stop, flood)
        )
        for source in sources
        for _ in range(arguments.per_source)
    ]
    print("started", flush=True)  # noqa: T201 - the parent waits for this line
    await asyncio.gather(*tasks, return_exceptions=True)
    return flood


def main(argv: list[str] | None = None) -> None:
    """Run one flood process: ``python -m tests.platform.hostile_clients ...``."""
    parser = argparse.ArgumentParser(description="Slow clients from loopback sources.")
    parser.add_argument("--server", required=True, help="host:port")
    parser.add_argument("--sources", required=True, help="comma-separated source addresses")
    parser.add_argument("--per-source", type=int, required=True)
    parser.add_argument("--line-interval", type=float, required=True)
    parser.add_argument("--max-seconds", type=float, required=True)
    flood = asyncio.run(_flood(parser.parse_args(argv)))
    print(json.dumps(asdict(flood)), flush=True)  # noqa: T201 - read by the parent


@contextmanager
def slow_flood(
    sources: list[str],
    per_source: int,
    server: tuple[str, int],
    *,
    line_interval: float,
    max_seconds: float,
    processes: int = 1,
) -> Iterator[Flood]:
    """Slow clients (a partial head, one more line every ``line_interval`` s, back
    after a pause when cut) from each of ``sources``, in ``processes`` processes of
    their own, until the block exits (or ``max_seconds``, whichever comes first).
    The counters are filled in when the block exits."""
    flood = Flood(sockets=len(sources) * per_source)
    shares = [sources[index::processes] for index in range(processes)]
    children: list[subprocess.Popen[str]] = []
    try:
        for share in filter(None, shares):
            command = [
                sys.executable,
                "-m",
                "tests.platform.hostile_clients",
                f"--server={server[0]}:{server[1]}",
                f"--sources={','.join(share)}",
                f"--per-source={per_source}",
                f"--line-interval={line_interval}",
                f"--max-seconds={max_seconds}",
            ]
            children.append(
                subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
            )
        for child in children:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], SOCKET_TIMEOUT_SECONDS)
            assert ready, "a flood process did not start"
            assert child.stdout.readline().strip() == "started"
        yield flood
    finally:
        for child in children:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            out, _ = child.communicate(timeout=max_seconds + SOCKET_TIMEOUT_SECONDS)
            if child.returncode == 0 and out.strip():
                counts = json.loads(out.strip().splitlines()[-1])
                flood.opened += counts["opened"]
                flood.closed_by_server += counts["closed_by_server"]
                flood.connect_errors += counts["connect_errors"]


def loopback_sources(first: int, count: int) -> list[str]:
    """``count`` loopback addresses from 127.0.0.<first> on."""
    return [f"127.0.0.{first + offset}" for offset in range(count)]


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    main()
