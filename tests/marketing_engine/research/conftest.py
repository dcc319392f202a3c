"""A running all-in-one platform with keys, for the keyword-research tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers import auth, issue_key, running
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

RESEARCH = "/marketing-engine/keywords/research"
KEYWORDS = "/aso-engine/api/keywords"
CONTENT = "/aso-engine/api/content"
FULL_SCOPES = (
    "marketing:research",
    "keywords:read",
    "keywords:write",
    "content:read",
    "content:write",
    "ai:generate",
)


@dataclass
class Platformed:
    client: httpx.AsyncClient
    platform: Platform

    async def headers(
        self, tenant: str = "acme", scopes: tuple[str, ...] = FULL_SCOPES
    ) -> dict[str, str]:
        _, issued = await issue_key(self.platform, tenant=tenant, scopes=scopes)
        return auth(issued.secret)

    async def track(self, headers: dict[str, str], *phrases: str, locale: str = "en-US") -> None:
        for phrase in phrases:
            created = await self.client.post(
                KEYWORDS, json={"phrase": phrase, "locale": locale}, headers=headers
            )
            assert created.status_code == 201, created.text

    async def research(self, headers: dict[str, str], **body: Any) -> httpx.Response:
        return await self.client.post(RESEARCH, json=body, headers=headers)


@asynccontextmanager
async def all_in_one(settings: Settings) -> AsyncIterator[Platformed]:
    app = build_all_in_one(settings)
    async with running(app) as client:
        yield Platformed(client, app.state.platform)


@pytest.fixture
def open_platform(
    make_settings: Callable[..., Settings],
) -> Callable[..., Any]:
    """``async with open_platform(**settings) as p``: the whole platform, in process."""

    def opener(**overrides: Any) -> Any:
        return all_in_one(make_settings(**overrides))

    return opener
