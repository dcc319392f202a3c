"""The whole platform in process, with chat keys for two tenants, over the assistant API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from xynergy.ai_assistant.models import Conversation, Message
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

BASE = "/ai-assistant/api"
CONVERSATIONS = BASE + "/conversations"
SEND = BASE + "/conversation/message"
SCOPES = ("assistant:chat", "ai:generate")


@dataclass
class AssistantApi:
    """``headers`` and ``same_tenant`` are two keys of tenant acme; ``other`` is globex's."""

    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    headers: dict[str, str]
    same_tenant: dict[str, str]
    reader: dict[str, str]
    other: dict[str, str]

    async def create(self, title: str = "", headers: dict[str, str] | None = None) -> Any:
        response = await self.client.post(
            CONVERSATIONS, json={"title": title}, headers=headers or self.headers
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def send(
        self,
        message: str,
        conversation_id: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {"message": message, **fields}
        headers = headers or self.headers
        if conversation_id is not None:
            return await self.client.post(
                f"{CONVERSATIONS}/{conversation_id}/messages", json=body, headers=headers
            )
        return await self.client.post(SEND, json=body, headers=headers)

    async def counts(self) -> tuple[int, int]:
        """(conversations, messages) in the database, every tenant."""
        async with unit_of_work(self.platform.sessionmaker) as session:
            conversations = await session.scalar(select(func.count()).select_from(Conversation))
            messages = await session.scalar(select(func.count()).select_from(Message))
        return int(conversations or 0), int(messages or 0)


@asynccontextmanager
async def assistant_api(settings: Settings) -> AsyncIterator[AssistantApi]:
    app = build_all_in_one(settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, key = await issue_key(platform, tenant="acme", scopes=SCOPES)
        _, second = await issue_key(platform, tenant="acme", scopes=SCOPES)
        _, reader = await issue_key(platform, tenant="acme", scopes=(*SCOPES, "assistant:audit"))
        _, other = await issue_key(platform, tenant="globex", scopes=SCOPES)
        yield AssistantApi(
            client=client,
            platform=platform,
            tenant_id=tenant_id,
            headers=auth(key.secret),
            same_tenant=auth(second.secret),
            reader=auth(reader.secret),
            other=auth(other.secret),
        )
