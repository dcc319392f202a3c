"""Request dependencies of the AI Assistant (async: a plain def would use the thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.messages.turns import TurnRunner
from xynergy.platform.runtime import Platform

__all__ = ["AssistantDep", "PlatformDep", "TurnsDep"]


async def _assistant(request: Request) -> AssistantSettings:
    settings: AssistantSettings = request.app.state.assistant
    return settings


async def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def _turns(request: Request) -> TurnRunner:
    turns: TurnRunner = request.app.state.assistant_turns
    return turns


AssistantDep = Annotated[AssistantSettings, Depends(_assistant)]
PlatformDep = Annotated[Platform, Depends(_platform)]
TurnsDep = Annotated[TurnRunner, Depends(_turns)]
