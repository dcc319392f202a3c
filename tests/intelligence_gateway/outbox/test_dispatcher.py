"""OutboxDispatcher: claims, delivers once, retries with backoff, survives restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.helpers import metric_value
from tests.intelligence_gateway.outbox.conftest import OpenPlatform
from tests.intelligence_gateway.outbox.support import (
    WebhookReceiver,
    create_form,
    dispatcher_for,
    outbox_rows,
    submit,
    wait_all_delivered,
    wait_until,
)
from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.outbox import OutboxMessage, backoff_seconds
from xynergy.platform.runtime import Platform


async def set_rows(platform: Platform, message_id: str, **values: object) -> None:
    async with unit_of_work(platform.sessionmaker) as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
        )


class TestBackoff:
    def test_is_full_jitter_under_a_capped_exponential(self) -> None:
        for attempts in range(0, 80):
            delay = backoff_seconds(attempts, base=1.0, maximum=60.0)
            assert 0 <= delay <= min(60.0, 2.0**attempts)


class TestRunOnce:
    async def test_delivers_each_message_once_with_a_valid_signature(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        submission_ids = await submit(platform, form_id, 3)
        dispatcher = dispatcher_for(platform)

        assert await dispatcher.run_once() == 3
        assert await dispatcher.run_once() == 0

        assert sorted(receiver.delivered_submissions()) == sorted(submission_ids)
        assert (receiver.requests, receiver.duplicates, receiver.bad_signatures) == (3, 0, 0)
        assert set(receiver.events) == {"submission.created"}
        rows = await outbox_rows(platform)
        assert all(row.delivered_at is not None and row.locked_until is None for row in rows)
        assert {row.id for row in rows} == set(receiver.delivered)
        text = platform.metrics.render().decode()
        assert (
            metric_value(
                text, "xynergy_webhook_deliveries_total", kind="intake-form", outcome="delivered"
            )
            == 3
        )

    async def test_rows_not_due_or_leased_elsewhere_are_not_touched(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 3)
        later, leased, due = await outbox_rows(platform)
        in_an_hour = utcnow() + timedelta(hours=1)
        await set_rows(platform, later.id, next_attempt_at=in_an_hour)
        await set_rows(platform, leased.id, locked_until=in_an_hour)

        assert await dispatcher_for(platform).run_once() == 1

        assert list(receiver.delivered) == [due.id]
        after = {row.id: row for row in await outbox_rows(platform)}
        for untouched in (later, leased):
            row = after[untouched.id]
            assert (row.attempts, row.delivered_at, row.last_error) == (0, None, None)
        assert after[leased.id].locked_until == in_an_hour
        assert after[later.id].locked_until is None

    async def test_an_expired_lease_is_claimed_again(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 1)
        [row] = await outbox_rows(platform)
        # A dispatcher died holding this row: its lease ran out a second ago.
        await set_rows(platform, row.id, locked_until=utcnow() - timedelta(seconds=1), attempts=1)

        assert await dispatcher_for(platform).run_once() == 1
        [after] = await outbox_rows(platform)
        assert after.delivered_at is not None
        assert after.attempts == 2


class TestRetries:
    @pytest.mark.parametrize("outage", ["503", "refused"])
    async def test_receiver_down_loses_nothing_and_each_arrives_once_when_back(
        self, platform: Platform, receiver: WebhookReceiver, outage: str
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        if outage == "503":
            receiver.status = 503
        else:
            await receiver.refuse()
        submission_ids = await submit(platform, form_id, 8)
        dispatcher = dispatcher_for(platform)

        for _ in range(3):
            await dispatcher.run_once()
            await asyncio.sleep(0.06)  # past the largest backoff

        assert receiver.delivered == {}
        rows = await outbox_rows(platform)
        assert all(row.delivered_at is None and row.failed_at is None for row in rows)
        assert all(row.attempts >= 1 and row.last_error for row in rows)

        await receiver.up()
        await dispatcher.start()
        try:
            await wait_until(lambda: len(receiver.delivered) == len(submission_ids))
        finally:
            await dispatcher.stop()
        assert sorted(receiver.delivered_submissions()) == sorted(submission_ids)
        assert receiver.duplicates == 0
        assert receiver.bad_signatures == 0
        rows = await outbox_rows(platform)
        assert all(row.delivered_at is not None for row in rows)

    async def test_a_failed_attempt_is_retried_after_a_backoff(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 1)
        receiver.status = 500
        before = utcnow()
        dispatcher = dispatcher_for(
            platform, outbox_backoff_base_seconds=100.0, outbox_backoff_max_seconds=200.0
        )

        assert await dispatcher.run_once() == 1
        [row] = await outbox_rows(platform)
        assert row.attempts == 1
        assert row.locked_until is None
        assert row.last_error is not None
        assert row.last_error.startswith("HTTP 500")
        assert before <= row.next_attempt_at <= utcnow() + timedelta(seconds=200)
        await set_rows(platform, row.id, next_attempt_at=utcnow() + timedelta(seconds=60))
        assert await dispatcher.run_once() == 0  # not due yet

    async def test_gives_up_after_the_configured_time_and_marks_failed(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 1)
        [row] = await outbox_rows(platform)
        await set_rows(platform, row.id, created_at=utcnow() - timedelta(minutes=2))
        receiver.status = 503
        dispatcher = dispatcher_for(platform, outbox_give_up_after_seconds=60.0)

        assert await dispatcher.run_once() == 1
        [failed] = await outbox_rows(platform)
        assert failed.failed_at is not None
        assert failed.delivered_at is None
        assert failed.last_error is not None
        assert failed.last_error.startswith("HTTP 503")
        assert await dispatcher.run_once() == 0  # never retried
        text = platform.metrics.render().decode()
        assert (
            metric_value(
                text, "xynergy_webhook_deliveries_total", kind="intake-form", outcome="failed"
            )
            == 1
        )

    async def test_a_removed_webhook_marks_the_message_failed(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 1)
        async with unit_of_work(platform.sessionmaker) as session:
            await session.execute(
                update(IntakeForm).where(IntakeForm.id == form_id).values(webhook_url=None)
            )

        assert await dispatcher_for(platform).run_once() == 1
        [row] = await outbox_rows(platform)
        assert row.failed_at is not None
        assert receiver.requests == 0


class TestBackgroundLoop:
    async def test_notify_wakes_the_loop_before_the_next_poll(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        dispatcher = dispatcher_for(platform, outbox_poll_seconds=30.0)
        await dispatcher.start()
        try:
            await asyncio.sleep(0.1)  # the loop found nothing and is idle
            await submit(platform, form_id, 1)
            dispatcher.notify()
            await wait_until(lambda: len(receiver.delivered) == 1, timeout=2.0)
        finally:
            await dispatcher.stop()

    async def test_restart_mid_backlog_delivers_everything_once_after_dedupe(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        # The lease outlives a delivery (timeout) but is short enough for the test
        # to wait it out for rows held by the stopped process.
        intake = {
            "outbox_concurrency": 3,
            "outbox_lease_seconds": 1.0,
            "outbox_webhook_timeout_seconds": 0.3,
        }
        first = await open_platform()
        form_id = await create_form(first, webhook_url=receiver.url)
        submission_ids = await submit(first, form_id, 30)
        receiver.delay_seconds = 0.01
        dispatcher = dispatcher_for(first, **intake)
        await dispatcher.start()
        await wait_until(lambda: len(receiver.delivered) >= 10)
        # The process goes down with deliveries in flight and half the backlog left.
        receiver.gate = asyncio.Event()
        await wait_until(lambda: receiver.held > 0)
        await dispatcher.stop()
        await first.close()
        receiver.gate.set()
        receiver.gate = None
        assert len(receiver.delivered) < len(submission_ids)

        second = await open_platform()
        restarted = dispatcher_for(second, **intake)
        await restarted.start()
        try:
            # Requests held when the first process stopped may still have been
            # received; the rows they belong to are sent again after their lease.
            rows = await wait_all_delivered(second)
        finally:
            await restarted.stop()
        assert sorted(receiver.delivered_submissions()) == sorted(submission_ids)
        assert receiver.bad_signatures == 0
        assert {row.id for row in rows} == set(receiver.delivered)
        assert any(row.attempts >= 2 for row in rows)  # the held ones went out again

    async def test_a_graceful_stop_gives_back_what_it_could_not_deliver(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 4)
        receiver.gate = asyncio.Event()  # deliveries hang until the stop cancels them
        dispatcher = dispatcher_for(
            platform, outbox_lease_seconds=3600.0, outbox_webhook_timeout_seconds=0.2
        )
        await dispatcher.start()
        await wait_until(lambda: receiver.held == 4)
        await dispatcher.stop()
        rows = await outbox_rows(platform)
        assert [row.delivered_at for row in rows] == [None] * 4
        # Unlocked, not held for the hour-long lease: the next process sends them now.
        assert [row.locked_until for row in rows] == [None] * 4

    async def test_two_replicas_never_deliver_one_message_twice(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        replicas = [await open_platform(), await open_platform()]
        form_id = await create_form(replicas[0], webhook_url=receiver.url)
        submission_ids = await submit(replicas[0], form_id, 40)
        receiver.delay_seconds = 0.005
        # A long lease: any duplicate would come from two claims, not from expiry.
        dispatchers = [
            dispatcher_for(
                replica, outbox_concurrency=4, outbox_batch=3, outbox_lease_seconds=300.0
            )
            for replica in replicas
        ]
        for dispatcher in dispatchers:
            await dispatcher.start()
        try:
            await wait_until(lambda: len(receiver.delivered) == len(submission_ids))
        finally:
            for dispatcher in dispatchers:
                await dispatcher.stop()
        assert receiver.requests == len(submission_ids)
        assert (receiver.duplicates, receiver.concurrent_duplicates) == (0, 0)
        assert sorted(receiver.delivered_submissions()) == sorted(submission_ids)
        delivered = [
            metric_value(
                replica.metrics.render().decode(),
                "xynergy_webhook_deliveries_total",
                kind="intake-form",
                outcome="delivered",
            )
            for replica in replicas
        ]
        assert sum(delivered) == len(submission_ids)

    async def test_stop_without_start_and_twice_is_harmless(self, platform: Platform) -> None:
        dispatcher = dispatcher_for(platform)
        await dispatcher.stop()
        await dispatcher.start()
        await dispatcher.stop()
        await dispatcher.stop()
