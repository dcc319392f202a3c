"""A running AI Routing Engine with a key, for the gateway's endpoint tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.helpers import auth, issue_key, running
from xynergy.ai_routing.app import create_ai_routing_app
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.gateway import AiEngine
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

SCOPES = ("ai:generate", "ai:usage", "ai:budgets")


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    key_id: str
    headers: dict[str, str]

    @property
    def engine(self) -> AiEngine:
        engine: AiEngine = self.app.state.ai
        return engine

    async def chat(
        self,
        content: str = "Suggest keywords for a yoga app",
        *,
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> httpx.Response:
        """POST /v1/chat/completions with one user message (model: the offline one)."""
        payload = {
            "model": "xynergy-offline",
            "messages": [{"role": "user", "content": content}],
            **body,
        }
        return await self.client.post(
            "/v1/chat/completions", json=payload, headers={**self.headers, **(headers or {})}
        )

    async def generate(
        self, *, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        """POST /api/generate/intelligent."""
        return await self.client.post(
            "/api/generate/intelligent", json=body, headers={**self.headers, **(headers or {})}
        )


def write_catalogue(
    path: Path, providers: list[dict[str, Any]], models: list[dict[str, Any]]
) -> Path:
    path.write_text(json.dumps({"providers": providers, "models": models}))
    return path


def http_model(name: str, provider: str, **fields: Any) -> dict[str, Any]:
    """A catalogue model entry with test prices (1 and 2 USD per million tokens)."""
    return {
        "name": name,
        "provider": provider,
        "upstream_model": fields.pop("upstream_model", "up-" + name),
        "input_price_per_mtok": fields.pop("input_price_per_mtok", "1.000"),
        "output_price_per_mtok": fields.pop("output_price_per_mtok", "2.000"),
        "context_window": fields.pop("context_window", 32_000),
        **fields,
    }


@asynccontextmanager
async def gateway(
    settings: Settings,
    ai: AiSettings | None = None,
    *,
    tenant: str = "acme",
    scopes: tuple[str, ...] = SCOPES,
) -> AsyncIterator[Gateway]:
    """The AI Routing Engine running in process, with a key for ``tenant``."""
    app = create_ai_routing_app(settings, ai=ai or AiSettings())
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant=tenant, scopes=scopes)
        yield Gateway(app, client, platform, tenant_id, issued.key.id, auth(issued.secret))


@asynccontextmanager
async def served_on_loopback(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs over real HTTP on 127.0.0.1;
    yields its base URL. Streaming reaches the client as it is produced."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def generous_limits() -> dict[str, str]:
    """Rate limits that never get in the way of a concurrency test."""
    from xynergy.platform.config import DEFAULT_RATE_LIMITS

    return {**DEFAULT_RATE_LIMITS, "ai_generate": "1000000/hour"}


def two_provider_catalogue(tmp_path: Path, openai_url: str, anthropic_url: str) -> Path:
    """Model ``primary`` (OpenAI protocol) falls back to ``secondary`` (Anthropic)."""
    return write_catalogue(
        tmp_path / "catalogue.json",
        providers=[
            {"name": "alpha", "kind": "openai", "base_url": openai_url},
            {"name": "beta", "kind": "anthropic", "base_url": anthropic_url},
        ],
        models=[
            http_model("primary", "alpha", fallbacks=["secondary"], quality_tier="premium"),
            http_model("secondary", "beta"),
        ],
    )


def stream_text(sse: str) -> str:
    """The concatenated delta content of an OpenAI SSE body."""
    text = []
    for line in sse.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                text.append(choice["delta"].get("content") or "")
    return "".join(text)
