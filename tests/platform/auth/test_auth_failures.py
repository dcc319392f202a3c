"""The failed-authentication budget per client address (``auth_failures``).

An address that keeps presenting unknown keys is refused with 429 once its budget
is used up, but only for keys that fail: a valid key from the same address (a
colleague behind the same NAT) is always served, cached or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from tests.helpers import auth, client_for, issue_key, metric_value, running, scrape
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.keys import generate_key
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.routing import api_router
from xynergy.platform.tenancy import service

Reader = Annotated[AuthContext, Depends(require_scopes("content:read"))]
FAILURE_BUDGET = 3
SHARED_ADDRESS = "203.0.113.9"
OTHER_ADDRESS = "198.51.100.20"


def _app(settings: Settings) -> FastAPI:
    router = api_router()

    @router.get("/items")
    async def list_items(_auth: Reader) -> dict[str, bool]:
        return {"ok": True}

    return create_service_app(slug="svc", title="svc", settings=settings, routers=[router])


@pytest.fixture
def app(make_settings: Callable[..., Settings], database_url: str) -> FastAPI:
    limits = {**DEFAULT_RATE_LIMITS, "auth_failures": f"{FAILURE_BUDGET}/minute"}
    return _app(make_settings(database_url=database_url, rate_limits=limits))


async def _use_up_the_budget(client: httpx.AsyncClient) -> list[int]:
    """Present well-formed unknown keys until the address is one past its budget."""
    forged = [generate_key().plaintext for _ in range(FAILURE_BUDGET + 1)]
    return [(await client.get("/items", headers=auth(key))).status_code for key in forged]


class TestFailedAuthentications:
    async def test_unknown_keys_past_the_budget_are_refused_with_retry_after(
        self, app: FastAPI
    ) -> None:
        async with running(app, client_ip=SHARED_ADDRESS) as attacker:
            statuses = await _use_up_the_budget(attacker)
            refused = await attacker.get("/items", headers=auth(generate_key().plaintext))
            metrics = scrape(app.state.platform)
        assert statuses == [401] * FAILURE_BUDGET + [429]
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert refused.json()["detail"] == "Too many failed authentications from this address."
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Limit"] == str(FAILURE_BUDGET)
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"]
        assert refused.headers["RateLimit-Policy"] == f"{FAILURE_BUDGET};w=60"
        rejections = metric_value(
            metrics, "xynergy_rate_limit_rejections_total", route_class="auth_failures"
        )
        assert rejections == 2

    async def test_a_valid_key_not_yet_cached_passes_from_an_address_past_its_budget(
        self, app: FastAPI
    ) -> None:
        async with running(app, client_ip=SHARED_ADDRESS) as shared:
            _, colleague = await issue_key(app.state.platform, scopes=["content:read"])
            assert await _use_up_the_budget(shared) == [401] * FAILURE_BUDGET + [429]

            served = await shared.get("/items", headers=auth(colleague.secret))
            # The valid key consumed nothing: the next unknown key is still refused.
            refused = await shared.get("/items", headers=auth(generate_key().plaintext))
        assert served.status_code == 200, served.text
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers

    async def test_many_colleagues_behind_one_address_are_all_served(self, app: FastAPI) -> None:
        async with running(app, client_ip=SHARED_ADDRESS) as shared:
            colleagues = [
                (await issue_key(app.state.platform, scopes=["content:read"]))[1]
                for _ in range(FAILURE_BUDGET + 2)
            ]
            await _use_up_the_budget(shared)
            statuses = [
                (await shared.get("/items", headers=auth(key.secret))).status_code
                for key in colleagues
            ]
        assert statuses == [200] * len(colleagues)

    async def test_a_cached_key_passes_and_another_address_is_unaffected(
        self, app: FastAPI
    ) -> None:
        async with running(app, client_ip=SHARED_ADDRESS) as attacker:
            _, cached = await issue_key(app.state.platform, scopes=["content:read"])
            _, uncached = await issue_key(app.state.platform, scopes=["content:read"])
            assert (await attacker.get("/items", headers=auth(cached.secret))).status_code == 200
            await _use_up_the_budget(attacker)
            still_cached = await attacker.get("/items", headers=auth(cached.secret))
            async with client_for(app, client_ip=OTHER_ADDRESS) as bystander:
                elsewhere_unknown = await bystander.get(
                    "/items", headers=auth(generate_key().plaintext)
                )
                elsewhere_valid = await bystander.get("/items", headers=auth(uncached.secret))
        assert still_cached.status_code == 200
        assert elsewhere_unknown.status_code == 401
        assert elsewhere_valid.status_code == 200

    async def test_a_revoked_key_counts_as_a_failure(self, app: FastAPI) -> None:
        async with running(app, client_ip=SHARED_ADDRESS) as client:
            platform = app.state.platform
            tenant_id, revoked = await issue_key(platform, scopes=["content:read"])

            async def ignore(_key_hash: str) -> None:
                return None

            async with unit_of_work(platform.sessionmaker) as session:
                await service.revoke_key(
                    session, tenant_id=tenant_id, key_id=revoked.key.id, invalidate=ignore
                )
            statuses = [
                (await client.get("/items", headers=auth(revoked.secret))).status_code
                for _ in range(FAILURE_BUDGET + 1)
            ]
        assert statuses == [401] * FAILURE_BUDGET + [429]
