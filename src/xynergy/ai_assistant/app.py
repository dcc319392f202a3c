"""The AI Assistant service app."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import NAMESPACE as CONTEXT_NAMESPACE
from xynergy.ai_assistant.context.model_info import NAMESPACE as MODELS_NAMESPACE
from xynergy.ai_assistant.conversations.endpoints import router as conversations_router
from xynergy.ai_assistant.messages.endpoints import router as messages_router
from xynergy.ai_assistant.messages.turns import TurnRunner
from xynergy.ai_assistant.pages.endpoints import chat_page
from xynergy.ai_assistant.retention import register_retention
from xynergy.ai_assistant.tools.endpoints import router as actions_router
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

__all__ = ["SLUG", "create_ai_assistant_app"]

SLUG = "ai-assistant"


def create_ai_assistant_app(
    settings: Settings, platform: Platform | None = None, assistant: AssistantSettings | None = None
) -> FastAPI:
    """The AI Assistant; its own settings come from ``XYNERGY_ASSISTANT_*`` unless given."""
    assistant = assistant or AssistantSettings()

    async def start(shared: Platform) -> None:
        shared.cache.set_default_ttl(CONTEXT_NAMESPACE, assistant.context_cache_ttl_seconds)
        shared.cache.set_default_ttl(MODELS_NAMESPACE, assistant.model_info_ttl_seconds)
        register_retention(shared, assistant)
        app.state.assistant_turns = TurnRunner(
            max_in_flight=assistant.turns_in_flight_max,
            shutdown_grace_seconds=assistant.shutdown_grace_seconds,
        )

    async def stop(shared: Platform) -> None:
        turns: TurnRunner | None = getattr(app.state, "assistant_turns", None)
        if turns is not None:
            await turns.stop()

    app = create_service_app(
        slug=SLUG,
        title="Xynergy AI Assistant",
        settings=settings,
        routers=[conversations_router, messages_router, actions_router],
        platform=platform,
        on_startup=[start],
        on_shutdown=[stop],
    )
    app.state.assistant = assistant
    app.state.home_page = chat_page  # its `/` is the chat page, not the services index
    return app
