"""Invariants 7 and 8 at run time: outbound calls share the pooled sessions.

The all-in-one platform answers 30 concurrent AI requests (distinct prompts, so
every one is a cache miss that reaches the provider) from a local
OpenAI-protocol server. The review's defect was a provider client that built an
``aiohttp.ClientSession`` per request: a new connector, a new TCP (and TLS)
handshake per call, and sessions nothing closed. Here no session may be built
while the requests run (the provider's was made at start-up), and the provider
sees no more sockets than the shared connector's per-host limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import generous_limits, http_model, write_catalogue
from tests.helpers import auth, issue_key, running
from xynergy.ai_routing.app import SLUG as AI_ROUTING
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

REQUESTS = 30
# Well below REQUESTS: a shared connector must queue calls on these few sockets.
POOL_LIMIT_PER_HOST = 4
CHAT = f"/{AI_ROUTING}/v1/chat/completions"


class SocketCountingOpenAI(FakeOpenAI):
    """The fake OpenAI upstream, noting the client socket each request came on."""

    def __init__(self) -> None:
        super().__init__()
        self.sockets: set[tuple[Any, ...]] = set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            self.sockets.add(tuple(transport.get_extra_info("peername")))
        return await super()._handle(request)


class SessionsBuilt:
    """Counts ``aiohttp.ClientSession`` instances built while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = aiohttp.ClientSession.__init__

        def counting(session: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
            self.count += 1
            original(session, *args, **kwargs)

        monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting)


async def test_ai_requests_reuse_the_shared_session_and_its_connections(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(
        rate_limits=generous_limits(), http_pool_limit_per_host=POOL_LIMIT_PER_HOST
    )
    async with SocketCountingOpenAI() as upstream:
        catalogue = write_catalogue(
            tmp_path / "catalogue.json",
            providers=[{"name": "fake", "kind": "openai", "base_url": upstream.base_url}],
            models=[http_model("m", "fake")],
        )
        monkeypatch.setenv("XYNERGY_AI_CATALOGUE", str(catalogue))
        app = build_all_in_one(settings)
        async with running(app) as client:
            platform: Platform = app.state.platform
            _, issued = await issue_key(platform, tenant="acme", scopes=("ai:generate",))
            headers = auth(issued.secret)
            built = SessionsBuilt(monkeypatch)

            async def ask(n: int) -> int:
                body = {"model": "m", "messages": [{"role": "user", "content": f"prompt {n}"}]}
                response = await client.post(CHAT, json=body, headers=headers)
                return response.status_code

            statuses = await asyncio.gather(*(ask(n) for n in range(REQUESTS)))
            sessions_built = built.count
            limit = platform.settings.http_pool_limit_per_host

    assert statuses == [200] * REQUESTS
    assert upstream.calls == REQUESTS, "every distinct prompt is a miss that reaches the provider"
    assert sessions_built == 0, f"{sessions_built} ClientSession(s) built during the requests"
    assert upstream.max_in_flight <= limit
    assert 1 <= len(upstream.sockets) <= limit, (
        f"{len(upstream.sockets)} sockets for {REQUESTS} requests: not the shared pool"
    )
