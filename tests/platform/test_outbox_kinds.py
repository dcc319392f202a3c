"""The platform outbox is generic: source kinds, their resolvers, one dispatcher per process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.helpers import ensure_tenant
from tests.intelligence_gateway.outbox.support import SECRET, WebhookReceiver, fast_outbox
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.outbox import Destination, OutboxMessage, enqueue, render_payload
from xynergy.platform.outbox.signing import verify_signature
from xynergy.platform.runtime import Platform

KIND = "test-channel"


@pytest.fixture
async def platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Platform]:
    opened = await Platform.open(make_settings(database_url=database_url, **fast_outbox()))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


async def add_message(platform: Platform, *, source_id: str, kind: str = KIND) -> str:
    tenant_id = await ensure_tenant(platform, "acme")
    message_id = new_id()
    async with unit_of_work(platform.sessionmaker) as session:
        await enqueue(
            session,
            tenant_id=tenant_id,
            source_kind=kind,
            source_id=source_id,
            event="test.happened",
            payload=render_payload({"id": message_id, "value": "ü"}),
            message_id=message_id,
        )
    return message_id


async def row(platform: Platform, message_id: str) -> OutboxMessage:
    async with unit_of_work(platform.sessionmaker) as session:
        found = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
        assert found is not None
        return found


async def settled(platform: Platform, message_id: str, timeout: float = 10.0) -> OutboxMessage:
    """The row once it is delivered, failed, or has a recorded error (bounded wait)."""
    async with asyncio.timeout(timeout):
        while True:
            current = await row(platform, message_id)
            if current.delivered_at or current.failed_at or current.last_error:
                return current
            await asyncio.sleep(0.02)


def resolving_to(url: str | None) -> Any:
    async def resolve(
        session: AsyncSession, source_ids: Collection[str]
    ) -> Mapping[str, Destination]:
        return {source_id: Destination(url=url, secret=SECRET) for source_id in source_ids}

    return resolve


class TestKinds:
    async def test_an_unregistered_kind_waits_for_a_process_that_resolves_it(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        message_id = await add_message(platform, source_id="c1")
        await asyncio.sleep(0.3)  # several polls of the platform's own dispatcher

        untouched = await row(platform, message_id)
        assert (untouched.attempts, untouched.locked_until) == (0, None)
        assert receiver.requests == 0

        platform.outbox.register(KIND, resolving_to(receiver.url))
        delivered = await settled(platform, message_id)

        assert delivered.delivered_at is not None
        assert list(receiver.delivered) == [message_id]
        assert receiver.events == ["test.happened"]
        assert receiver.bad_signatures == 0

    async def test_the_exact_payload_bytes_are_signed_and_sent(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        platform.outbox.register(KIND, resolving_to(receiver.url))
        message_id = await add_message(platform, source_id="c1")
        stored = await settled(platform, message_id)

        # The receiver verified the signature over the body it read: only the
        # stored bytes, unchanged, carry the signature made over them.
        assert stored.delivered_at is not None
        assert (receiver.requests, receiver.bad_signatures) == (1, 0)
        [signature] = receiver.signatures
        assert verify_signature(stored.payload.encode(), signature, SECRET)
        assert receiver.delivered[message_id] == json.loads(stored.payload)


class TestResolution:
    async def test_a_source_the_resolver_does_not_know_fails(self, platform: Platform) -> None:
        async def nothing(session: AsyncSession, ids: Collection[str]) -> Mapping[str, Destination]:
            return {}

        platform.outbox.register(KIND, nothing)
        failed = await settled(platform, await add_message(platform, source_id="gone"))

        assert failed.failed_at is not None
        assert failed.last_error == "the source no longer has a webhook"

    async def test_a_resolver_that_raises_is_retried_not_failed(self, platform: Platform) -> None:
        async def broken(session: AsyncSession, ids: Collection[str]) -> Mapping[str, Destination]:
            raise RuntimeError("lookup table unavailable")

        platform.outbox.register(KIND, broken)
        retried = await settled(platform, await add_message(platform, source_id="c1"))

        assert (retried.failed_at, retried.delivered_at) == (None, None)
        assert retried.last_error == "the destination could not be looked up"
