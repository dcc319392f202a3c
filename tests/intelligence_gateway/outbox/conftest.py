"""Fixtures of the outbox tests: a receiver, and platforms on one database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.intelligence_gateway.outbox.support import WebhookReceiver
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

OpenPlatform = Callable[..., Awaitable[Platform]]


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


@pytest.fixture
async def open_platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[OpenPlatform]:
    """Opens platforms (replicas, or an app restarted) on the test's database."""
    async with AsyncExitStack() as stack:

        async def open_one(**overrides: Any) -> Platform:
            values: dict[str, Any] = {"database_url": database_url, "breaker_reset_seconds": 0.2}
            values.update(overrides)
            platform = await Platform.open(make_settings(**values))
            stack.push_async_callback(platform.close)
            return platform

        yield open_one


@pytest.fixture
async def platform(open_platform: OpenPlatform) -> Platform:
    return await open_platform()
