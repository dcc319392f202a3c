"""Keys, seeded keywords and a scripted fake for the tool tests."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.ai_assistant.harness import CONVERSATIONS, SCOPES, AssistantApi
from tests.ai_routing.fakes import FakeOpenAI
from tests.helpers import auth, issue_key
from xynergy.ai_assistant.models import Message
from xynergy.ai_routing.usage.models import UsageEventRow
from xynergy.aso_engine.models import Keyword
from xynergy.platform.db.session import unit_of_work

ASK = "which of my keywords are trending and draft a campaign for the top three"
READ = ("keywords:read", "workflows:read", "ai:usage", "campaigns:read")
CAMPAIGNS = ("campaigns:write", "workflows:write")
RUN_WAIT_SECONDS = 60.0


async def tool_key(api: AssistantApi, *extra: str, tenant: str = "acme") -> dict[str, str]:
    _, key = await issue_key(api.platform, tenant=tenant, scopes=(*SCOPES, *READ, *extra))
    return auth(key.secret)


async def seed_trending(api: AssistantApi) -> None:
    """Three keywords of acme that moved over the last week (the first the most)."""
    _, seeder = await issue_key(api.platform, tenant="acme", scopes=("keywords:write",))
    today = datetime.now(UTC).date()
    observations = []
    async with unit_of_work(api.platform.sessionmaker) as session:
        for rank, phrase in enumerate(("trail shoes", "yoga mats", "ski wax")):
            keyword = Keyword(tenant_id=api.tenant_id, phrase=phrase, locale="en-US", tags=[])
            session.add(keyword)
            await session.flush()
            for days, position in ((7, 60 + rank), (0, 5 + rank * 10)):
                observations.append(
                    {
                        "keyword_id": keyword.id,
                        "engine": "google",
                        "locale": "en-US",
                        "position": position,
                        "observed_on": (today - timedelta(days=days)).isoformat(),
                    }
                )
    response = await api.client.post(
        "/aso-engine/api/rankings",
        json={"observations": observations},
        headers=auth(seeder.secret),
    )
    assert response.status_code < 300, response.text


async def rows(api: AssistantApi, conversation_id: str) -> list[Message]:
    async with unit_of_work(api.platform.sessionmaker) as session:
        found = await session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)
        )
        return list(found)


async def tool_rows(api: AssistantApi, conversation_id: str) -> list[Message]:
    return [row for row in await rows(api, conversation_id) if row.role == "tool"]


def action_of(row: Message) -> dict[str, Any]:
    assert row.tool_calls
    action = row.tool_calls[0].get("action")
    assert isinstance(action, dict)
    return action


async def ledger_tasks(api: AssistantApi, at_least: int) -> list[str]:
    """The tasks of the tenant's ledger rows, once ``at_least`` are written (the ledger
    writes in the background every second)."""
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while True:
        async with unit_of_work(api.platform.sessionmaker) as session:
            tasks = list(
                await session.scalars(
                    select(UsageEventRow.task).where(UsageEventRow.tenant_id == api.tenant_id)
                )
            )
        if len(tasks) >= at_least or time.monotonic() > deadline:
            return tasks
        await asyncio.sleep(0.2)


async def wait_finished(
    api: AssistantApi, conversation_id: str, action_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    """Read the action until its run has finished."""
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while True:
        response = await api.client.get(
            f"{CONVERSATIONS}/{conversation_id}/actions/{action_id}", headers=headers
        )
        assert response.status_code == 200, response.text
        action: dict[str, Any] = response.json()
        if action["status"] != "running" or time.monotonic() > deadline:
            return action
        await asyncio.sleep(0.2)


class ScriptedFake(FakeOpenAI):
    """Answers the n-th round of a turn with the n-th scripted tool call (while tools
    are offered), then in text."""

    def __init__(self, script: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__()
        self.script = script
        self.tool_call = script[0]  # the base class looks for tools only when set

    def _ends_with_tool_result(self, body: dict[str, Any]) -> bool:
        messages = body.get("messages") or []
        # Rounds of the current turn: tool results after the last user message.
        done = 0
        for message in reversed(messages):
            if message.get("role") == "user":
                break
            done += message.get("role") == "tool"
        if done < len(self.script):
            self.tool_call = self.script[done]
            return False
        return True

    def offered_tools(self) -> list[set[str]]:
        """The tool names each request offered."""
        return [
            {tool["function"]["name"] for tool in body.get("tools") or ()} for body in self.requests
        ]
