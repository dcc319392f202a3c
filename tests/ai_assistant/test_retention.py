"""Retention: conversations idle past the period are deleted with their messages."""

from __future__ import annotations

from datetime import timedelta

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.retention import purge_inactive
from xynergy.platform.db.base import utcnow


class TestPurgeInactive:
    async def test_deletes_only_idle_conversations(self, api: AssistantApi) -> None:
        settings = AssistantSettings()
        kept = (await api.send("recent")).json()["conversation_id"]
        later = utcnow() + timedelta(days=settings.retention_inactive_days, hours=1)
        # Nothing is idle long enough yet.
        assert await purge_inactive(api.platform, settings, batch=10) == 0
        assert await api.counts() == (1, 2)
        # Seen from past the period, both conversations are idle: one batch of one.
        await api.create("idle")
        assert await purge_inactive(api.platform, settings, batch=1, now=later) == 1
        assert await purge_inactive(api.platform, settings, batch=10, now=later) == 1
        assert await api.counts() == (0, 0)
        response = await api.client.get(f"{CONVERSATIONS}/{kept}", headers=api.headers)
        assert response.status_code == 404
