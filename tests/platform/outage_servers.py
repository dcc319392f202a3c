"""Real servers a test can take down and bring back: its own redis-server, and a
TCP proxy in front of PostgreSQL (the shared server itself is never stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time

import redis as redis_sync

START_TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.05
_COPY_CHUNK = 65536


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    """A throwaway ``redis-server`` on its own port, killed and restarted by its PID."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self._binary = binary
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (on the same port each time) and wait until it answers."""
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own arguments
            [
                self._binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis_sync.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis_sync.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(_POLL_SECONDS)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (our own PID only) and wait for it to exit."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=START_TIMEOUT_SECONDS)
            self._process = None

    def keys(self, pattern: str) -> list[bytes]:
        """Keys matching ``pattern`` now (to see what the app stored)."""
        client = redis_sync.Redis(port=self.port)
        try:
            return list(client.scan_iter(match=pattern))
        finally:
            client.close()


class TcpProxy:
    """Forwards a loopback port to ``target``; ``stop`` refuses new connections and
    cuts the open ones (the database "goes down"), ``start`` brings it back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        pipes, self._pipes = list(self._pipes), set()
        for pipe in pipes:
            pipe.cancel()
        for pipe in pipes:
            with contextlib.suppress(asyncio.CancelledError):
                await pipe

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        for side in (writer, upstream_writer):
            self._transports.add(side.transport)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(self._copy(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _copy(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(_COPY_CHUNK):
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()
            self._transports.discard(sink.transport)
