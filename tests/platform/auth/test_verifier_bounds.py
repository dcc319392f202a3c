"""The verifier's in-memory state stays within ``key_cache_max_entries``, however many keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import func, select

from tests.helpers import issue_key, running
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.models import ApiKey

BOUND = 3
KEYS = BOUND + 4
# Longer than any test: only the explicit flush writes, so the map is seen whole.
NEVER_SECONDS = 3600.0


@pytest.fixture
async def platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Platform]:
    settings = make_settings(
        database_url=database_url,
        key_cache_max_entries=BOUND,
        key_last_used_flush_seconds=NEVER_SECONDS,
    )
    app = create_admin_app(settings)
    async with running(app):
        yield app.state.platform


async def keys_marked_used(platform: Platform) -> int:
    query = select(func.count()).select_from(ApiKey).where(ApiKey.last_used_at.is_not(None))
    async with platform.sessionmaker() as session:
        return int(await session.scalar(query) or 0)


class TestLastUsedBatch:
    async def test_more_keys_than_the_bound_batch_only_the_bound(self, platform: Platform) -> None:
        secrets = [(await issue_key(platform, tenant=f"t{i}"))[1].secret for i in range(KEYS)]
        verifier = platform.key_verifier
        for secret in secrets:
            await verifier.verify(secret)
        # The map is private; what it holds is what one flush writes.
        await verifier.flush_last_used()
        assert await keys_marked_used(platform) == BOUND

    async def test_a_flush_makes_room_for_the_keys_left_out(self, platform: Platform) -> None:
        secrets = [(await issue_key(platform, tenant=f"t{i}"))[1].secret for i in range(KEYS)]
        verifier = platform.key_verifier
        for secret in secrets:
            await verifier.verify(secret)
        await verifier.flush_last_used()
        for secret in secrets[BOUND:]:
            await verifier.verify(secret)
        await verifier.flush_last_used()
        # The next window takes up to the bound again: 3 of the 4 left out.
        assert await keys_marked_used(platform) == 2 * BOUND
