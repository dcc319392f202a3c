"""Budgets: reserve, settle, release and limits on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.ai_routing.usage.conftest import make_guard, redis_settings, set_limit
from tests.helpers import ensure_tenant, issue_key
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.budget_store import COUNTER_TTL_MARGIN, RedisBudgetStore
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.models import BudgetCounter
from xynergy.ai_routing.usage.periods import BudgetCounterRef, Period, period_end, period_start
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import BudgetExceeded
from xynergy.platform.runtime import Platform

KEY = "a" * 32
OTHER_KEY = "b" * 32


async def spent(
    guard: BudgetGuard,
    tenant_id: str,
    period: Period,
    subject: str = "",
    now: datetime | None = None,
) -> int:
    moment = now or utcnow()
    ref = BudgetCounterRef(subject, period, period_start(period, moment), 0)
    (value,) = await guard.current_spend(tenant_id, [ref])
    return value


class TestReserve:
    async def test_no_budget_gives_an_empty_reservation(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        reservation = await guard.reserve(tenant_id=tenant_id, key_id=KEY, max_cost_nanos=10**12)
        assert reservation.empty
        await guard.settle(reservation, 5)
        assert await _stored_counters(platform) == 0
        if platform.redis is not None:
            pattern = platform.settings.redis_key_prefix + "ai:budget:*"
            assert [key async for key in platform.redis.scan_iter(match=pattern)] == []

    async def test_reserve_settle_release_arithmetic(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=10_000)
        first = await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=3_000)
        assert not first.empty
        assert await spent(guard, tenant_id, "day") == 3_000
        await guard.settle(first, 1_200)
        assert await spent(guard, tenant_id, "day") == 1_200
        second = await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=4_000)
        assert await spent(guard, tenant_id, "day") == 5_200
        await guard.release(second)
        assert await spent(guard, tenant_id, "day") == 1_200

    async def test_settling_twice_counts_once(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="month", limit_nanos=10_000)
        reservation = await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=3_000)
        await guard.settle(reservation, 1_000)
        await guard.settle(reservation, 2_000)
        await guard.release(reservation)
        assert await spent(guard, tenant_id, "month") == 1_000

    async def test_settling_above_the_reservation_adds_the_difference(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=10_000)
        reservation = await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=1_000)
        await guard.settle(reservation, 1_500)
        assert await spent(guard, tenant_id, "day") == 1_500

    async def test_up_to_the_limit_exactly_is_allowed(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=1_000)
        await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=1_000)
        with pytest.raises(BudgetExceeded):
            await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=1)

    async def test_exceeding_is_402_naming_the_period_and_changes_nothing(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=100_000)
        await set_limit(platform, guard, tenant_id=tenant_id, period="month", limit_nanos=1_000)
        await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=600)
        with pytest.raises(BudgetExceeded) as raised:
            await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=600)
        assert raised.value.status_code == 402
        assert "monthly" in raised.value.detail
        assert int(raised.value.headers["Retry-After"]) > 0
        # All or nothing: the day counter, which had room, did not move either.
        assert await spent(guard, tenant_id, "day") == 600
        assert await spent(guard, tenant_id, "month") == 600

    async def test_retry_after_is_the_time_until_the_period_resets(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        midnight = period_end("day", period_start("day", utcnow()))
        now = midnight - timedelta(seconds=90)
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=10)
        with pytest.raises(BudgetExceeded) as raised:
            await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=11, now=now)
        assert raised.value.headers["Retry-After"] == "90"
        assert "daily" in raised.value.detail

    async def test_a_new_limit_applies_at_once(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=10)
        with pytest.raises(BudgetExceeded):
            await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=50)
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=100)
        await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=50)

    async def test_tenants_do_not_share_budgets(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        other = await ensure_tenant(platform, "globex")
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=10)
        with pytest.raises(BudgetExceeded):
            await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=50)
        assert (await guard.reserve(tenant_id=other, key_id=None, max_cost_nanos=50)).empty


class TestPerKeyBudgets:
    async def test_a_key_budget_limits_that_key_only(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(
            platform, guard, tenant_id=tenant_id, period="day", limit_nanos=1_000, key_id=KEY
        )
        await guard.reserve(tenant_id=tenant_id, key_id=KEY, max_cost_nanos=800)
        with pytest.raises(BudgetExceeded) as raised:
            await guard.reserve(tenant_id=tenant_id, key_id=KEY, max_cost_nanos=800)
        assert "This key's daily" in raised.value.detail
        assert (
            await guard.reserve(tenant_id=tenant_id, key_id=OTHER_KEY, max_cost_nanos=800)
        ).empty
        assert (await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=800)).empty

    async def test_tenant_and_key_budgets_both_apply(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="month", limit_nanos=1_000)
        await set_limit(
            platform, guard, tenant_id=tenant_id, period="day", limit_nanos=5_000, key_id=KEY
        )
        reservation = await guard.reserve(tenant_id=tenant_id, key_id=KEY, max_cost_nanos=700)
        assert {(c.subject, c.period) for c in reservation.counters} == {
            ("", "month"),
            (KEY, "day"),
        }
        # The key has room; the tenant's month does not.
        with pytest.raises(BudgetExceeded) as raised:
            await guard.reserve(tenant_id=tenant_id, key_id=KEY, max_cost_nanos=700)
        assert "tenant's monthly" in raised.value.detail
        await guard.settle(reservation, 100)
        assert await spent(guard, tenant_id, "month") == 100
        assert await spent(guard, tenant_id, "day", KEY) == 100


class TestPeriods:
    async def test_a_new_day_and_month_start_from_zero(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        month_end = period_end("month", period_start("month", utcnow()))
        before, after = month_end - timedelta(minutes=1), month_end + timedelta(minutes=1)
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=1_000)
        await set_limit(platform, guard, tenant_id=tenant_id, period="month", limit_nanos=1_500)
        late = await guard.reserve(
            tenant_id=tenant_id, key_id=None, max_cost_nanos=1_000, now=before
        )
        with pytest.raises(BudgetExceeded):
            await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=1, now=before)
        early = await guard.reserve(
            tenant_id=tenant_id, key_id=None, max_cost_nanos=1_000, now=after
        )
        # Settling after midnight corrects the counters the reservation was made on.
        await guard.settle(late, 400)
        assert await spent(guard, tenant_id, "day", now=before) == 400
        assert await spent(guard, tenant_id, "month", now=before) == 400
        assert await spent(guard, tenant_id, "day", now=after) == 1_000
        assert await spent(guard, tenant_id, "month", now=after) == 1_000
        await guard.release(early)

    def test_period_boundaries_are_utc_days_and_calendar_months(self) -> None:
        moment = datetime.fromisoformat("2026-12-31T23:30:00-02:00")  # 2027-01-01 01:30 UTC
        assert period_start("day", moment).isoformat() == "2027-01-01"
        assert period_start("month", moment).isoformat() == "2027-01-01"
        assert period_end("month", period_start("month", moment)).isoformat() == (
            "2027-02-01T00:00:00+00:00"
        )
        december = datetime.fromisoformat("2026-12-15T12:00:00+00:00")
        assert period_end("month", period_start("month", december)).isoformat() == (
            "2027-01-01T00:00:00+00:00"
        )


@pytest.mark.redis
class TestRedisKeys:
    @pytest.fixture(params=["redis"])
    def backend_settings(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> Settings:
        return make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)

    async def test_every_counter_key_expires_after_its_period(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=1_000)
        await set_limit(platform, guard, tenant_id=tenant_id, period="month", limit_nanos=1_000)
        reservation = await guard.reserve(tenant_id=tenant_id, key_id=None, max_cost_nanos=10)
        await guard.settle(reservation, 5)
        redis = platform.redis
        assert redis is not None
        prefix = platform.settings.redis_key_prefix + "ai:budget:"
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        assert len(keys) == 2
        for ref in reservation.counters:
            key = RedisBudgetStore(redis, platform.settings.redis_key_prefix).key(tenant_id, ref)
            assert await redis.expiretime(key) == int(
                (ref.resets_at + COUNTER_TTL_MARGIN).timestamp()
            )


async def _stored_counters(platform: Platform) -> int:
    async with platform.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(BudgetCounter)) or 0)


class TestConcurrency:
    MAX_COST = 1_000
    ACTUAL = 700
    REQUESTS = 500
    FITS = 100

    async def _hammer(self, guards: list[BudgetGuard], tenant_id: str) -> int:
        async def one(n: int) -> bool:
            guard = guards[n % len(guards)]
            try:
                reservation = await guard.reserve(
                    tenant_id=tenant_id, key_id=KEY, max_cost_nanos=self.MAX_COST
                )
            except BudgetExceeded:
                return False
            await asyncio.sleep(0)  # the AI call
            await guard.settle(reservation, self.ACTUAL)
            return True

        results = await asyncio.gather(*(one(n) for n in range(self.REQUESTS)))
        return sum(results)

    async def test_concurrent_reservations_never_overshoot(
        self, guard: BudgetGuard, tenant_id: str, platform: Platform
    ) -> None:
        limit = self.FITS * self.MAX_COST
        await set_limit(platform, guard, tenant_id=tenant_id, period="day", limit_nanos=limit)
        await set_limit(
            platform, guard, tenant_id=tenant_id, period="month", limit_nanos=limit * 10, key_id=KEY
        )
        admitted = await self._hammer([guard], tenant_id)
        committed = await spent(guard, tenant_id, "day")
        assert committed == admitted * self.ACTUAL
        assert committed <= limit + self.MAX_COST
        assert admitted >= self.FITS  # settling below the maximum frees room
        assert await spent(guard, tenant_id, "month", KEY) == committed

    @pytest.mark.redis
    async def test_two_replicas_sharing_redis_never_overshoot(
        self,
        make_settings: Callable[..., Settings],
        redis_url: str,
        redis_prefix: str,
        ai_settings: AiSettings,
    ) -> None:
        settings = redis_settings(make_settings, redis_url, redis_prefix)
        first, second = await Platform.open(settings), await Platform.open(settings)
        try:
            assert first.redis is not None
            assert second.redis is not None
            assert first.redis is not second.redis
            guards = [make_guard(first, ai_settings), make_guard(second, ai_settings)]
            tenant_id = await ensure_tenant(first, "acme")
            limit = self.FITS * self.MAX_COST
            await set_limit(first, guards[0], tenant_id=tenant_id, period="day", limit_nanos=limit)
            await guards[1].invalidate(tenant_id)
            admitted = await self._hammer(guards, tenant_id)
            committed = await spent(guards[1], tenant_id, "day")
            assert committed == admitted * self.ACTUAL
            assert committed <= limit + self.MAX_COST
            assert admitted >= self.FITS
        finally:
            await first.close()
            await second.close()


class TestIssuedKeys:
    async def test_a_real_key_id_works_as_a_subject(
        self, guard: BudgetGuard, platform: Platform
    ) -> None:
        tenant_id, issued = await issue_key(platform, scopes=["ai:generate"])
        key_id = issued.key.id
        await set_limit(
            platform, guard, tenant_id=tenant_id, period="day", limit_nanos=5, key_id=key_id
        )
        with pytest.raises(BudgetExceeded):
            await guard.reserve(tenant_id=tenant_id, key_id=key_id, max_cost_nanos=6)
