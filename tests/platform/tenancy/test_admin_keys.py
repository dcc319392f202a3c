"""The ``admin`` scope: only the operator tenant's keys hold it, and they name the
tenant they act for.

The operator tenant is the one ``xynergy bootstrap`` creates (named
``OPERATOR_TENANT_NAME``). Creation refuses ``admin`` anywhere else (API, CLI,
rotation); a row that holds it anyway (written before the rule, or by hand) is
verified without it. An admin key that omits ``X-Xynergy-Tenant`` on a route that
works inside one tenant gets a 400 instead of silently acting in the operator's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from click.testing import Result
from fastapi import Depends, FastAPI
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.helpers import auth, client_for, ensure_tenant, issue_key, running
from xynergy.cli import app as cli_app
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.keys import generate_key
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.routing import ACTING_TENANT_HEADER, api_router
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.models import ApiKey

Reader = Annotated[AuthContext, Depends(require_scopes("content:read"))]


@dataclass
class Operator:
    """A running admin app and the operator tenant's admin key."""

    app: FastAPI
    client: httpx.AsyncClient
    platform: Platform
    settings: Settings
    tenant_id: str
    secret: str

    def acting_for(self, tenant_id: str) -> dict[str, str]:
        return {**auth(self.secret), ACTING_TENANT_HEADER: tenant_id}

    async def key_count(self, tenant_id: str) -> int:
        query = select(func.count()).select_from(ApiKey).where(ApiKey.tenant_id == tenant_id)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def key(self, key_id: str) -> ApiKey:
        async with self.platform.sessionmaker() as session:
            found = await session.get(ApiKey, key_id)
        assert found is not None
        return found

    async def legacy_key(self, tenant_name: str, scopes: list[str]) -> tuple[str, str, str]:
        """A key row holding ``scopes`` written past the service's rules, as one created
        before them would be: (tenant id, key id, secret)."""
        tenant_id = await ensure_tenant(self.platform, tenant_name)
        generated = generate_key()
        row = ApiKey(
            tenant_id=tenant_id,
            name="legacy",
            key_hash=generated.key_hash,
            display_prefix=generated.display_prefix,
            last4=generated.last4,
            environment="live",
            scopes=scopes,
        )
        async with unit_of_work(self.platform.sessionmaker) as session:
            session.add(row)
        return tenant_id, row.id, generated.plaintext


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def operator(settings: Settings) -> AsyncIterator[Operator]:
    app = create_admin_app(settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant=OPERATOR_TENANT_NAME, scopes=["admin"])
        yield Operator(app, client, platform, settings, tenant_id, issued.secret)


async def _cli(settings: Settings, tmp_path: Path, *args: str) -> Result:
    """Run ``xynergy <args>`` on the test's database (in a thread: it runs its own loop)."""
    env: dict[str, str | None] = {
        "XYNERGY_DATABASE_URL": settings.resolved_database_url,
        "XYNERGY_DATA_DIR": str(tmp_path / "cli"),
        "XYNERGY_REDIS_URL": None,
        "NO_COLOR": "1",
        "COLUMNS": "400",
    }
    runner = CliRunner(env=env)
    return await asyncio.to_thread(runner.invoke, cli_app, list(args), catch_exceptions=True)


# --- item 11: admin only in the operator tenant ------------------------------------


class TestCreateAdminKey:
    async def test_the_api_refuses_admin_for_a_customer_tenant_and_writes_nothing(
        self, operator: Operator
    ) -> None:
        acme = await ensure_tenant(operator.platform, "acme")
        response = await operator.client.post(
            "/admin/keys",
            json={"name": "escalate", "scopes": ["admin"]},
            headers=operator.acting_for(acme),
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        assert "operator tenant" in response.json()["detail"]
        assert await operator.key_count(acme) == 0

    async def test_the_api_issues_admin_for_the_operator_tenant(self, operator: Operator) -> None:
        response = await operator.client.post(
            "/admin/keys",
            json={"name": "second operator", "scopes": ["admin"]},
            headers=operator.acting_for(operator.tenant_id),
        )
        assert response.status_code == 201, response.text
        assert response.json()["key"]["tenant_id"] == operator.tenant_id
        listing = await operator.client.get(
            "/admin/tenants", headers=auth(response.json()["secret"])
        )
        assert listing.status_code == 200

    async def test_the_cli_refuses_admin_for_a_customer_tenant_and_writes_nothing(
        self, operator: Operator, tmp_path: Path
    ) -> None:
        acme = await ensure_tenant(operator.platform, "acme")
        result = await _cli(
            operator.settings, tmp_path, "keys", "create", "--tenant", acme, "--scopes", "admin"
        )
        assert result.exit_code == 1
        assert "validation_failed" in result.stderr
        assert "operator tenant" in result.stderr
        assert "Traceback" not in result.output
        assert await operator.key_count(acme) == 0

    async def test_the_cli_issues_admin_for_the_operator_tenant(
        self, operator: Operator, tmp_path: Path
    ) -> None:
        result = await _cli(
            operator.settings,
            tmp_path,
            "keys",
            "create",
            "--tenant",
            operator.tenant_id,
            "--scopes",
            "admin",
            "--json",
        )
        assert result.exit_code == 0, result.output
        assert await operator.key_count(operator.tenant_id) == 2


class TestRotateAdminKey:
    async def test_the_api_refuses_to_rotate_a_customer_admin_key(self, operator: Operator) -> None:
        acme, legacy_id, _ = await operator.legacy_key("acme", ["admin"])
        response = await operator.client.post(
            f"/admin/keys/{legacy_id}/rotate", json={}, headers=operator.acting_for(acme)
        )
        assert response.status_code == 422, response.text
        assert "operator tenant" in response.json()["detail"]
        assert await operator.key_count(acme) == 1
        assert (await operator.key(legacy_id)).grace_until is None

    async def test_the_cli_refuses_to_rotate_a_customer_admin_key(
        self, operator: Operator, tmp_path: Path
    ) -> None:
        acme, legacy_id, _ = await operator.legacy_key("acme", ["admin"])
        result = await _cli(
            operator.settings, tmp_path, "keys", "rotate", legacy_id, "--tenant", acme
        )
        assert result.exit_code == 1
        assert "operator tenant" in result.stderr
        assert await operator.key_count(acme) == 1
        assert (await operator.key(legacy_id)).grace_until is None


class TestVerifyCustomerAdminKey:
    async def test_a_customer_key_holding_admin_cannot_read_tenants(
        self, operator: Operator
    ) -> None:
        _, _, legacy = await operator.legacy_key("acme", ["admin"])
        response = await operator.client.get("/admin/tenants", headers=auth(legacy))
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"

    async def test_a_customer_key_holding_admin_cannot_act_for_another_tenant(
        self, operator: Operator
    ) -> None:
        victim, _, _ = await operator.legacy_key("victim", ["keys:admin"])
        _, _, legacy = await operator.legacy_key("acme", ["admin", "keys:admin"])
        response = await operator.client.get(
            "/admin/keys", headers={**auth(legacy), ACTING_TENANT_HEADER: victim}
        )
        assert response.status_code == 403, response.text
        assert response.json()["detail"] == "Only an admin key may act for another tenant."

    async def test_a_customer_key_keeps_its_other_scopes_in_its_own_tenant(
        self, operator: Operator
    ) -> None:
        acme, legacy_id, legacy = await operator.legacy_key("acme", ["admin", "keys:admin"])
        response = await operator.client.get("/admin/keys", headers=auth(legacy))
        assert response.status_code == 200, response.text
        assert [item["id"] for item in response.json()["items"]] == [legacy_id]
        assert {item["tenant_id"] for item in response.json()["items"]} == {acme}

    async def test_the_operator_admin_key_still_reads_every_tenant(
        self, operator: Operator
    ) -> None:
        await operator.legacy_key("acme", ["admin"])
        response = await operator.client.get("/admin/tenants", headers=auth(operator.secret))
        assert response.status_code == 200, response.text
        assert {item["name"] for item in response.json()["items"]} == {
            OPERATOR_TENANT_NAME,
            "acme",
        }


# --- item 12: an admin key names its tenant ------------------------------------


def _tenant_scoped_calls(key_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/admin/keys", {"json": {"name": "wrong tenant", "scopes": ["content:read"]}}),
        ("GET", "/admin/keys", {}),
        ("GET", f"/admin/keys/{key_id}", {}),
        ("POST", f"/admin/keys/{key_id}/rotate", {"json": {}}),
        ("POST", f"/admin/keys/{key_id}/revoke", {}),
    ]


class TestAdminWithoutTenantHeader:
    @pytest.mark.parametrize("call", range(5), ids=["create", "list", "get", "rotate", "revoke"])
    async def test_a_tenant_scoped_admin_call_is_a_bad_request_naming_the_header(
        self, operator: Operator, call: int
    ) -> None:
        _, own = await issue_key(
            operator.platform, tenant=OPERATOR_TENANT_NAME, scopes=["content:read"]
        )
        method, path, kwargs = _tenant_scoped_calls(own.key.id)[call]
        before = await operator.key_count(operator.tenant_id)

        response = await operator.client.request(
            method, path, headers=auth(operator.secret), **kwargs
        )

        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_request"
        assert ACTING_TENANT_HEADER in response.json()["detail"]
        assert await operator.key_count(operator.tenant_id) == before
        untouched = await operator.key(own.key.id)
        assert (untouched.revoked_at, untouched.grace_until) == (None, None)

    async def test_naming_the_operator_tenant_acts_there(self, operator: Operator) -> None:
        response = await operator.client.post(
            "/admin/keys",
            json={"name": "ops reader", "scopes": ["content:read"]},
            headers=operator.acting_for(operator.tenant_id),
        )
        assert response.status_code == 201, response.text
        assert response.json()["key"]["tenant_id"] == operator.tenant_id

    async def test_a_platform_wide_admin_call_needs_no_header(self, operator: Operator) -> None:
        listed = await operator.client.get("/admin/tenants", headers=auth(operator.secret))
        created = await operator.client.post(
            "/admin/tenants", json={"name": "globex"}, headers=auth(operator.secret)
        )
        assert listed.status_code == 200, listed.text
        assert created.status_code == 201, created.text

    async def test_metrics_are_platform_wide_and_need_no_header(self, operator: Operator) -> None:
        response = await operator.client.get("/metrics", headers=auth(operator.secret))
        assert response.status_code == 200, response.text

    async def test_a_key_without_admin_needs_no_header(self, operator: Operator) -> None:
        acme, _, manager = await operator.legacy_key("acme", ["keys:admin"])
        response = await operator.client.get("/admin/keys", headers=auth(manager))
        assert response.status_code == 200, response.text
        assert {item["tenant_id"] for item in response.json()["items"]} == {acme}

    async def test_a_service_route_inside_one_tenant_needs_the_header_too(
        self, operator: Operator
    ) -> None:
        router = api_router()

        @router.get("/items")
        async def list_items(caller: Reader) -> dict[str, str]:
            return {"tenant": caller.tenant_id}

        service = create_service_app(
            slug="svc",
            title="svc",
            settings=operator.settings,
            routers=[router],
            platform=operator.platform,
        )
        acme = await ensure_tenant(operator.platform, "acme")
        async with client_for(service) as client:
            unnamed = await client.get("/items", headers=auth(operator.secret))
            named = await client.get("/items", headers=operator.acting_for(acme))
        assert unnamed.status_code == 400, unnamed.text
        assert ACTING_TENANT_HEADER in unnamed.json()["detail"]
        assert named.status_code == 200, named.text
        assert named.json() == {"tenant": acme}
