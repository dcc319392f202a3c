"""What the fault and soak tests share: process figures, progress streams, a fake provider.

* ``figures(pid)``: a replica's RSS, open file descriptors and TCP connections to
  PostgreSQL and Redis, read from /proc (its sockets' inodes matched against
  /proc/net/tcp), so connections are counted per replica without an
  ``application_name``.
* ``stream_events``: a workflow's progress over SSE or WebSocket, until it ends.
* ``FakeProvider``: the OpenAI-protocol fake the AI tests use, served from a
  thread of its own (the cluster tests are synchronous), with a switch that
  makes every answer a 500 while the provider is "down".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from tests.ai_routing.fakes import FakeOpenAI
from tests.helpers import auth

POSTGRES_PORT = 5432
REDIS_PORT = 6379
_TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_ESTABLISHED = "01"
STREAM_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Figures:
    """One look at a replica process."""

    rss_bytes: int
    fds: int
    postgres: int
    redis: int

    def describe(self) -> str:
        """One short line."""
        return (
            f"rss {self.rss_bytes / 2**20:.0f} MiB, fds {self.fds}, "
            f"pg {self.postgres}, redis {self.redis}"
        )


def _remote_ports_by_inode() -> dict[str, int]:
    ports: dict[str, int] = {}
    for table in _TCP_TABLES:
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _ESTABLISHED:
                ports[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    return ports


def figures(pid: int) -> Figures:
    """``pid``'s resident memory, open fds and established connections to PG and Redis."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    remote = _remote_ports_by_inode()
    fds = 0
    counts = {POSTGRES_PORT: 0, REDIS_PORT: 0}
    for name in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            port = remote.get(target[len("socket:[") : -1])
            if port in counts:
                counts[port] += 1
    return Figures(rss, fds, counts[POSTGRES_PORT], counts[REDIS_PORT])


def _kind(event: dict[str, Any]) -> str:
    # A dropped stream says why: "dropped:slow_consumer", "dropped:shutting_down".
    kind = str(event["type"])
    return f"{kind}:{event.get('reason')}" if kind == "dropped" else kind


async def _sse(url: str, secret: str, seen: threading.Event) -> list[str]:
    kinds: list[str] = []
    async with (
        httpx.AsyncClient(timeout=STREAM_TIMEOUT_SECONDS) as client,
        client.stream("GET", url, headers=auth(secret)) as response,
    ):
        assert response.status_code == HTTPStatus.OK, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                kinds.append(_kind(json.loads(line.removeprefix("data: "))))
                seen.set()
    return kinds


async def _ws(url: str, secret: str, seen: threading.Event) -> list[str]:
    kinds: list[str] = []
    async with connect(url, additional_headers=auth(secret), open_timeout=10) as ws:
        # A close other than 1000/1001 (1012: the server is restarting) ends the loop
        # with ConnectionClosedError: the close code is the stream's last word either way.
        with contextlib.suppress(ConnectionClosedError):
            async for message in ws:
                kinds.append(_kind(json.loads(message)))
                seen.set()
        await ws.wait_closed()
        kinds.append(f"close:{ws.close_code}")
    return kinds


async def stream_events(
    base_url: str, run_id: str, secret: str, *, websocket: bool, seen: threading.Event
) -> list[str]:
    """The event types of run ``run_id``'s progress stream (a WebSocket ends with its close
    code as ``close:<code>``); an exception if the stream broke. ``seen`` is set at the first."""
    if websocket:
        ws_base = base_url.replace("http://", "ws://")
        return await _ws(f"{ws_base}/system-runtime/ws/workflows/{run_id}", secret, seen)
    return await _sse(f"{base_url}/system-runtime/api/workflows/{run_id}/events", secret, seen)


class BackgroundLoop:
    """An asyncio loop on a daemon thread, for async servers and clients in sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, work: Any) -> Future[Any]:
        """Schedule coroutine ``work`` on the loop."""
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def run(self, work: Any, timeout: float = 60.0) -> Any:
        """Run coroutine ``work`` on the loop; its result."""
        return self.submit(work).result(timeout=timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class SwitchableOpenAI(FakeOpenAI):
    """``FakeOpenAI`` that answers every request with a 500 while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        if self.down:
            self.refused += 1
            return HTTPStatus.INTERNAL_SERVER_ERROR, "the provider is down"
        return super()._refusal(request)


@contextmanager
def fake_providers(count: int) -> Iterator[list[SwitchableOpenAI]]:
    """``count`` fake OpenAI-protocol providers on loopback ports, until the block exits."""
    loop = BackgroundLoop()
    fakes = [SwitchableOpenAI() for _ in range(count)]
    entered: list[SwitchableOpenAI] = []
    try:
        for fake in fakes:
            loop.run(fake.__aenter__())
            entered.append(fake)
        yield fakes
    finally:
        for fake in entered:
            loop.run(fake.__aexit__(None, None, None))
        loop.close()


def metric_sum(text: str, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples (with ``labels``) in a Prometheus text page; None if absent."""
    total: float | None = None
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if any(f'{key}="{wanted}"' not in label_text for key, wanted in labels.items()):
            continue
        total = (total or 0.0) + float(value)
    return total


def wait_until(condition: Any, timeout: float, interval: float = 0.2) -> float | None:
    """Seconds until ``condition()`` held, polled every ``interval``; None at the timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    return None


# --- mixed traffic (the soak) ----------------------------------------------------------
AI_PROMPT_POOL = 24  # distinct prompts asked again and again: the cache's hits
AI_UNIQUE_SHARE = 0.3  # of AI calls, a prompt never asked before: a miss
INTAKE_FILL_SECONDS = 3.2  # form tokens are refused younger than 3 s (the intake's default)
INTAKE_POSTS_PER_ADDRESS = 3  # well under the intake's 5/minute and public 20/hour per IP
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class MixedTraffic:
    """Reads, writes, AI calls, public intake posts, workflow starts and a WebSocket, each
    kind from its own workers with a pause between requests, all through ``proxy_url``.

    Public intake comes from many loopback source addresses (127.0.x.y: each its own
    client for nginx's ``$remote_addr`` and the per-IP limits), as many visitors would.
    """

    proxy_url: str
    secret: str  # workflows, definitions, AI and intake admin scopes
    definition: str
    form_public_id: str
    site: str  # the origin the form's page is served from
    pause_seconds: float = 0.1
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    _stop: asyncio.Event | None = None
    _address: int = 0
    _serial: int = 0

    def _count(self, kind: str, status: int) -> None:
        self.statuses[(kind, status)] += 1

    def _failed(self, kind: str, error: BaseException) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {error!r}")

    def _next_address(self) -> str:
        self._address += 1
        return f"127.0.{2 + self._address // 250 % 250}.{1 + self._address % 250}"

    async def _loop(self, kind: str, one: Any) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                await one()
            except (httpx.HTTPError, OSError, TimeoutError, AssertionError) as error:
                self._failed(kind, error)
            except Exception as error:  # noqa: BLE001 - a websockets error: counted, not fatal
                self._failed(kind, error)
            await asyncio.sleep(self.pause_seconds)

    async def run(self, seconds: float) -> None:
        """Send traffic for ``seconds``."""
        self._stop = asyncio.Event()
        headers = auth(self.secret)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        async with httpx.AsyncClient(
            base_url=self.proxy_url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
        ) as client:

            async def read() -> None:
                response = await client.get(
                    "/system-runtime/api/workflow-definitions", params={"limit": 20}
                )
                self._count("read", response.status_code)
                response = await client.get("/intelligence-gateway/api/forms")
                self._count("read", response.status_code)

            async def write() -> None:
                # A content piece created and deleted again: two writes that leave the
                # tenant's data flat however long the soak runs. (Definition versions,
                # used before, are bounded per name: a 30-minute soak reached the bound
                # and was answered 409 from the 4,001st write on.)
                self._serial += 1
                response = await client.post(
                    "/aso-engine/api/content",
                    json={"title": f"soak write {self._serial}", "author": "soak"},
                )
                self._count("write", response.status_code)
                if response.status_code == HTTPStatus.CREATED:
                    piece = response.json()["id"]
                    response = await client.delete(f"/aso-engine/api/content/{piece}")
                    self._count("write", response.status_code)

            async def ai() -> None:
                self._serial += 1
                unique = (self._serial * 7919 % 100) < AI_UNIQUE_SHARE * 100
                topic = (
                    f"unique {uuid.uuid4().hex}"
                    if unique
                    else f"topic {self._serial % AI_PROMPT_POOL}"
                )
                response = await client.post(
                    "/ai-routing-engine/v1/chat/completions",
                    json={
                        "model": "xynergy-offline",
                        "messages": [{"role": "user", "content": f"keywords for {topic}"}],
                        "max_tokens": 30,
                    },
                )
                self._count("ai", response.status_code)

            async def workflow() -> None:
                response = await client.post(
                    "/system-runtime/api/workflows/start", json={"definition": self.definition}
                )
                self._count("workflow", response.status_code)

            async def websocket() -> None:
                response = await client.post(
                    "/system-runtime/api/workflows/start", json={"definition": self.definition}
                )
                self._count("workflow", response.status_code)
                run_id = response.json()["id"]
                seen = threading.Event()
                kinds = await stream_events(
                    self.proxy_url, run_id, self.secret, websocket=True, seen=seen
                )
                self._count("websocket", 1000 if kinds[-1] == "close:1000" else 599)

            async def intake() -> None:
                transport = httpx.AsyncHTTPTransport(local_address=self._next_address())
                async with httpx.AsyncClient(
                    base_url=self.proxy_url,
                    transport=transport,
                    timeout=REQUEST_TIMEOUT_SECONDS,
                    headers={"Origin": self.site},
                ) as visitor:
                    for _ in range(INTAKE_POSTS_PER_ADDRESS):
                        token = await visitor.get(
                            f"/intelligence-gateway/api/forms/{self.form_public_id}/token"
                        )
                        self._count("intake", token.status_code)
                        if token.status_code != HTTPStatus.OK:
                            return
                        await asyncio.sleep(INTAKE_FILL_SECONDS)
                        self._serial += 1
                        posted = await visitor.post(
                            "/intelligence-gateway/api/contact",
                            params={"form": self.form_public_id},
                            json={
                                "name": "Grace Hopper",
                                "email": f"visitor{self._serial}@example.com",
                                "message": "Please call me back about pricing.",
                                "form_token": token.json()["token"],
                            },
                        )
                        self._count("intake", posted.status_code)

            workers = (
                [("read", read)] * 3
                + [("write", write)]
                + [("ai", ai)] * 3
                + [("workflow", workflow)]
                + [("websocket", websocket)]
                + [("intake", intake)] * 2
            )
            tasks = [asyncio.create_task(self._loop(kind, one)) for kind, one in workers]
            await asyncio.sleep(seconds)
            self._stop.set()
            await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_SECONDS + INTAKE_FILL_SECONDS * 4)
            for task in tasks:
                task.cancel()

    def describe(self) -> str:
        """Answers per kind and status, and errors."""
        kinds: dict[str, dict[int, int]] = {}
        for (kind, status), count in sorted(self.statuses.items()):
            kinds.setdefault(kind, {})[status] = count
        return f"{kinds}; transport errors {dict(self.errors)} {self.error_samples[:3]}"
