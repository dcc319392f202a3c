"""The admin API for tenants and keys, end to end, on SQLite and PostgreSQL.

Each test runs the admin app with its lifespan against a real database and
checks both the response and what was (or was not) written.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.auth.keys import hash_key
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.models import ApiKey, Tenant

KEY_PATTERN = re.compile(r"^xyn_live_[0-9A-Za-z]{49}$")
KEY_LENGTH = 58
TENANT_FIELDS = {"id", "name", "created_at"}
KEY_FIELDS = {
    "id",
    "tenant_id",
    "name",
    "display_prefix",
    "last4",
    "environment",
    "scopes",
    "created_at",
    "expires_at",
    "revoked_at",
    "grace_until",
    "rotated_from",
    "last_used_at",
}
ACT_AS = "X-Xynergy-Tenant"
# Far longer than any test, so only an explicit flush writes last_used_at.
NEVER_FLUSH_SECONDS = 3600.0


@dataclass
class Admin:
    """A running admin app, its platform, and an operator key holding ``admin``."""

    client: httpx.AsyncClient
    platform: Platform
    settings: Settings
    operator_tenant: str
    secret: str

    async def key_for(self, tenant: str, *scopes: str) -> tuple[str, str, str]:
        """A new key of ``tenant`` (created if needed): (tenant id, key id, secret)."""
        tenant_id, issued = await issue_key(self.platform, tenant=tenant, scopes=scopes)
        return tenant_id, issued.key.id, issued.secret

    async def tenant_count(self, **where: Any) -> int:
        query = select(func.count()).select_from(Tenant).filter_by(**where)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def key_count(self, tenant_id: str) -> int:
        query = select(func.count()).select_from(ApiKey).where(ApiKey.tenant_id == tenant_id)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url, key_last_used_flush_seconds=NEVER_FLUSH_SECONDS)


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    app = create_admin_app(settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant=OPERATOR_TENANT_NAME, scopes=["admin"])
        yield Admin(client, platform, settings, tenant_id, issued.secret)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def _status(admin: Admin, secret: str) -> int:
    """What GET /admin/keys answers to ``secret``: 200 for a working keys:admin key."""
    return (await admin.client.get("/admin/keys", headers=auth(secret))).status_code


async def _list_all(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(100):
        response = await client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]
    pytest.fail("pagination did not terminate")


# --- tenants ------------------------------------------------------------------


class TestCreateTenant:
    async def test_admin_creates_a_tenant(self, admin: Admin) -> None:
        response = await admin.client.post(
            "/admin/tenants", json={"name": "acme"}, headers=auth(admin.secret)
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == TENANT_FIELDS
        assert body["name"] == "acme"
        assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
        created = datetime.fromisoformat(body["created_at"])
        assert created.tzinfo is not None
        assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
        assert await admin.tenant_count(id=body["id"], name="acme") == 1

    async def test_duplicate_name_conflicts_and_keeps_one_row(self, admin: Admin) -> None:
        first = await admin.client.post(
            "/admin/tenants", json={"name": "acme"}, headers=auth(admin.secret)
        )
        assert first.status_code == 201
        second = await admin.client.post(
            "/admin/tenants", json={"name": "acme"}, headers=auth(admin.secret)
        )
        assert second.status_code == 409, second.text
        assert second.json()["error"] == "conflict"
        assert await admin.tenant_count(name="acme") == 1

    @pytest.mark.parametrize(
        "name",
        ["x" * 201, "", "semi;colon", "<script>", "tab\tname", "new\nline"],
        ids=["too-long", "empty", "semicolon", "markup", "tab", "newline"],
    )
    async def test_invalid_name_is_refused_and_nothing_written(
        self, admin: Admin, name: str
    ) -> None:
        before = await admin.tenant_count()
        response = await admin.client.post(
            "/admin/tenants", json={"name": name}, headers=auth(admin.secret)
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        assert await admin.tenant_count() == before

    async def test_longest_allowed_name_is_accepted(self, admin: Admin) -> None:
        response = await admin.client.post(
            "/admin/tenants", json={"name": "x" * 200}, headers=auth(admin.secret)
        )
        assert response.status_code == 201, response.text

    async def test_unknown_field_is_refused(self, admin: Admin) -> None:
        response = await admin.client.post(
            "/admin/tenants", json={"name": "acme", "plan": "gold"}, headers=auth(admin.secret)
        )
        assert response.status_code == 422, response.text
        assert "plan" in response.json()["detail"]
        assert await admin.tenant_count(name="acme") == 0

    async def test_key_without_admin_scope_is_forbidden(self, admin: Admin) -> None:
        _, _, secret = await admin.key_for("acme", "keys:admin", "content:read")
        response = await admin.client.post(
            "/admin/tenants", json={"name": "sneaky"}, headers=auth(secret)
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
        assert await admin.tenant_count(name="sneaky") == 0


class TestListTenants:
    async def test_pages_return_every_tenant_once_newest_first(self, admin: Admin) -> None:
        created = []
        for index in range(5):
            response = await admin.client.post(
                "/admin/tenants", json={"name": f"tenant-{index}"}, headers=auth(admin.secret)
            )
            assert response.status_code == 201
            created.append(response.json()["id"])

        items = await _list_all(admin.client, "/admin/tenants", auth(admin.secret))

        ids = [item["id"] for item in items]
        # The operator tenant was created first, so it comes last.
        assert ids == [*reversed(created), admin.operator_tenant]
        assert all(set(item) == TENANT_FIELDS for item in items)

    async def test_limit_above_the_maximum_is_refused(self, admin: Admin) -> None:
        response = await admin.client.get(
            "/admin/tenants",
            params={"limit": admin.settings.page_size_max + 1},
            headers=auth(admin.secret),
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"

    async def test_limit_at_the_maximum_is_accepted(self, admin: Admin) -> None:
        response = await admin.client.get(
            "/admin/tenants",
            params={"limit": admin.settings.page_size_max},
            headers=auth(admin.secret),
        )
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        "cursor",
        [
            "not-a-cursor!",
            # Decodes to a valid ISO date that is out of range once put in UTC.
            _b64('["0001-01-01T00:00:00+14:00","0123abcd"]'),
            _b64('["9999-12-31T23:59:59-14:00","0123abcd"]'),
        ],
        ids=["garbage", "before-year-one", "after-year-9999"],
    )
    async def test_garbage_cursor_is_a_bad_request(self, admin: Admin, cursor: str) -> None:
        response = await admin.client.get(
            "/admin/tenants", params={"cursor": cursor}, headers=auth(admin.secret)
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_request"

    async def test_zero_limit_is_refused(self, admin: Admin) -> None:
        response = await admin.client.get(
            "/admin/tenants", params={"limit": 0}, headers=auth(admin.secret)
        )
        assert response.status_code == 422, response.text

    async def test_key_without_admin_scope_is_forbidden(self, admin: Admin) -> None:
        _, _, secret = await admin.key_for("acme", "keys:admin")
        response = await admin.client.get("/admin/tenants", headers=auth(secret))
        assert response.status_code == 403, response.text


# --- keys ---------------------------------------------------------------------


class TestCreateKey:
    async def test_secret_is_returned_once_and_never_listed(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin", "content:read")
        response = await admin.client.post(
            "/admin/keys",
            json={"name": "reader", "scopes": ["content:read"]},
            headers=auth(manager),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"key", "secret"}
        secret = body["secret"]
        assert KEY_PATTERN.fullmatch(secret)
        assert len(secret) == KEY_LENGTH
        key = body["key"]
        assert set(key) == KEY_FIELDS
        assert key["scopes"] == ["content:read"]
        assert secret.startswith(key["display_prefix"])
        assert secret.endswith(key["last4"])

        listing = await admin.client.get("/admin/keys", headers=auth(manager))
        single = await admin.client.get(f"/admin/keys/{key['id']}", headers=auth(manager))
        assert listing.status_code == 200
        assert single.status_code == 200
        assert key["id"] in {item["id"] for item in listing.json()["items"]}
        assert set(single.json()) == KEY_FIELDS
        for response in (listing, single):
            assert secret not in response.text
            assert hash_key(secret) not in response.text
            assert "key_hash" not in response.text

    async def test_created_key_authenticates(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        response = await admin.client.post(
            "/admin/keys", json={"name": "second", "scopes": ["keys:admin"]}, headers=auth(manager)
        )
        assert response.status_code == 201
        created = response.json()
        mine = await admin.client.get(
            f"/admin/keys/{created['key']['id']}", headers=auth(created["secret"])
        )
        assert mine.status_code == 200, mine.text
        assert mine.json()["name"] == "second"

    @pytest.mark.parametrize(
        "scopes", [["content:write"], ["admin"], ["content:read", "admin"]], ids=str
    )
    async def test_cannot_grant_scopes_it_does_not_hold(
        self, admin: Admin, scopes: list[str]
    ) -> None:
        tenant_id, _, manager = await admin.key_for("acme", "keys:admin", "content:read")
        before = await admin.key_count(tenant_id)
        response = await admin.client.post(
            "/admin/keys", json={"name": "escalate", "scopes": scopes}, headers=auth(manager)
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
        assert await admin.key_count(tenant_id) == before

    async def test_unknown_scope_is_refused(self, admin: Admin) -> None:
        tenant_id, _, manager = await admin.key_for("acme", "keys:admin", "content:read")
        before = await admin.key_count(tenant_id)
        response = await admin.client.post(
            "/admin/keys",
            json={"name": "typo", "scopes": ["content:read", "content:raed"]},
            headers=auth(manager),
        )
        assert response.status_code == 422, response.text
        assert "content:raed" in response.json()["detail"]
        assert await admin.key_count(tenant_id) == before

    async def test_key_without_keys_admin_scope_is_forbidden(self, admin: Admin) -> None:
        tenant_id, _, reader = await admin.key_for("acme", "content:read")
        response = await admin.client.post(
            "/admin/keys", json={"name": "x", "scopes": ["content:read"]}, headers=auth(reader)
        )
        assert response.status_code == 403, response.text
        assert await admin.key_count(tenant_id) == 1


class TestGetKey:
    async def test_unknown_key_id_is_not_found(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        response = await admin.client.get("/admin/keys/" + "0" * 32, headers=auth(manager))
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"

    async def test_malformed_key_id_is_refused(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        response = await admin.client.get("/admin/keys/NOT-HEX", headers=auth(manager))
        assert response.status_code == 422, response.text


class TestTenantIsolation:
    @pytest.mark.parametrize(
        ("method", "suffix"), [("GET", ""), ("POST", "/rotate"), ("POST", "/revoke")]
    )
    async def test_another_tenants_key_id_is_not_found(
        self, admin: Admin, method: str, suffix: str
    ) -> None:
        _, victim_id, victim = await admin.key_for("tenant-a", "keys:admin")
        _, _, intruder = await admin.key_for("tenant-b", "keys:admin")
        kwargs: dict[str, Any] = {"json": {}} if method == "POST" else {}
        response = await admin.client.request(
            method, f"/admin/keys/{victim_id}{suffix}", headers=auth(intruder), **kwargs
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
        # Untouched: the victim key still works and is neither rotated nor revoked.
        own = await admin.client.get(f"/admin/keys/{victim_id}", headers=auth(victim))
        assert own.status_code == 200
        assert own.json()["revoked_at"] is None
        assert own.json()["grace_until"] is None

    async def test_another_tenants_keys_are_never_listed(self, admin: Admin) -> None:
        await admin.key_for("tenant-a", "keys:admin")
        await admin.key_for("tenant-a", "content:read")
        b_tenant, b_key_id, intruder = await admin.key_for("tenant-b", "keys:admin")
        items = await _list_all(admin.client, "/admin/keys", auth(intruder))
        assert [item["id"] for item in items] == [b_key_id]
        assert {item["tenant_id"] for item in items} == {b_tenant}

    async def test_admin_acting_for_a_tenant_sees_its_keys(self, admin: Admin) -> None:
        a_tenant, a_manager_id, _ = await admin.key_for("tenant-a", "keys:admin")
        _, a_reader_id, _ = await admin.key_for("tenant-a", "content:read")
        await admin.key_for("tenant-b", "keys:admin")
        items = await _list_all(
            admin.client, "/admin/keys", {**auth(admin.secret), ACT_AS: a_tenant}
        )
        assert {item["id"] for item in items} == {a_manager_id, a_reader_id}
        single = await admin.client.get(
            f"/admin/keys/{a_reader_id}", headers={**auth(admin.secret), ACT_AS: a_tenant}
        )
        assert single.status_code == 200, single.text

    async def test_admin_naming_its_own_tenant_sees_only_its_own_keys(self, admin: Admin) -> None:
        await admin.key_for("tenant-a", "keys:admin")
        items = await _list_all(
            admin.client, "/admin/keys", {**auth(admin.secret), ACT_AS: admin.operator_tenant}
        )
        assert {item["tenant_id"] for item in items} == {admin.operator_tenant}

    async def test_non_admin_key_cannot_act_for_another_tenant(self, admin: Admin) -> None:
        a_tenant, _, _ = await admin.key_for("tenant-a", "keys:admin")
        _, _, intruder = await admin.key_for("tenant-b", "keys:admin")
        response = await admin.client.get(
            "/admin/keys", headers={**auth(intruder), ACT_AS: a_tenant}
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"

    async def test_non_admin_key_naming_its_own_tenant_is_served(self, admin: Admin) -> None:
        b_tenant, _, manager = await admin.key_for("tenant-b", "keys:admin")
        response = await admin.client.get(
            "/admin/keys", headers={**auth(manager), ACT_AS: b_tenant}
        )
        assert response.status_code == 200, response.text

    async def test_admin_acting_for_an_unknown_tenant_is_not_found(self, admin: Admin) -> None:
        response = await admin.client.get(
            "/admin/keys", headers={**auth(admin.secret), ACT_AS: "f" * 32}
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"


class TestRotateKey:
    async def test_rotation_issues_a_successor_and_both_work_during_grace(
        self, admin: Admin
    ) -> None:
        _, old_id, old_secret = await admin.key_for("acme", "keys:admin")
        assert await _status(admin, old_secret) == 200  # cached before rotating

        response = await admin.client.post(
            f"/admin/keys/{old_id}/rotate", json={}, headers=auth(old_secret)
        )
        assert response.status_code == 201, response.text
        body = response.json()
        new_secret, new_key = body["secret"], body["key"]
        assert KEY_PATTERN.fullmatch(new_secret)
        assert new_secret != old_secret
        assert new_key["id"] != old_id
        assert new_key["rotated_from"] == old_id
        assert new_key["scopes"] == ["keys:admin"]
        assert new_key["grace_until"] is None

        assert await _status(admin, old_secret) == 200
        assert await _status(admin, new_secret) == 200
        old = (await admin.client.get(f"/admin/keys/{old_id}", headers=auth(new_secret))).json()
        grace_until = datetime.fromisoformat(old["grace_until"])
        expected = datetime.now(UTC) + timedelta(seconds=admin.settings.key_rotation_grace_seconds)
        assert abs(grace_until - expected) < timedelta(minutes=1)
        assert old["revoked_at"] is None

    async def test_rotating_a_rotated_key_conflicts(self, admin: Admin) -> None:
        _, old_id, manager = await admin.key_for("acme", "keys:admin")
        first = await admin.client.post(
            f"/admin/keys/{old_id}/rotate", json={}, headers=auth(manager)
        )
        assert first.status_code == 201
        again = await admin.client.post(
            f"/admin/keys/{old_id}/rotate", json={}, headers=auth(manager)
        )
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "conflict"

    async def test_rotating_a_revoked_key_conflicts(self, admin: Admin) -> None:
        tenant_id, _, manager = await admin.key_for("acme", "keys:admin")
        _, target_id, _ = await admin.key_for("acme", "keys:admin")
        revoke = await admin.client.post(f"/admin/keys/{target_id}/revoke", headers=auth(manager))
        assert revoke.status_code == 200
        before = await admin.key_count(tenant_id)
        rotate = await admin.client.post(
            f"/admin/keys/{target_id}/rotate", json={}, headers=auth(manager)
        )
        assert rotate.status_code == 409, rotate.text
        assert await admin.key_count(tenant_id) == before

    async def test_zero_grace_ends_the_old_key_at_once(self, admin: Admin) -> None:
        _, old_id, old_secret = await admin.key_for("acme", "keys:admin")
        assert await _status(admin, old_secret) == 200  # cached before rotating

        response = await admin.client.post(
            f"/admin/keys/{old_id}/rotate", json={"grace_seconds": 0}, headers=auth(old_secret)
        )
        assert response.status_code == 201, response.text

        assert await _status(admin, old_secret) == 401
        assert await _status(admin, response.json()["secret"]) == 200

    async def test_old_key_stops_when_its_grace_ends(self, admin: Admin) -> None:
        _, old_id, old_secret = await admin.key_for("acme", "keys:admin")
        response = await admin.client.post(
            f"/admin/keys/{old_id}/rotate", json={"grace_seconds": 1}, headers=auth(old_secret)
        )
        assert response.status_code == 201, response.text
        assert await _status(admin, old_secret) == 200  # cached, with its grace end

        await asyncio.sleep(1.1)

        assert await _status(admin, old_secret) == 401
        assert await _status(admin, response.json()["secret"]) == 200

    async def test_grace_beyond_the_maximum_is_refused(self, admin: Admin) -> None:
        _, old_id, manager = await admin.key_for("acme", "keys:admin")
        response = await admin.client.post(
            f"/admin/keys/{old_id}/rotate",
            json={"grace_seconds": 31 * 86_400},
            headers=auth(manager),
        )
        assert response.status_code == 422, response.text
        single = await admin.client.get(f"/admin/keys/{old_id}", headers=auth(manager))
        assert single.json()["grace_until"] is None


class TestRevokeKey:
    async def test_revoked_key_is_refused_at_once(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        _, target_id, target = await admin.key_for("acme", "keys:admin")
        assert await _status(admin, target) == 200  # cached before revoking

        response = await admin.client.post(f"/admin/keys/{target_id}/revoke", headers=auth(manager))

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == target_id
        revoked_at = datetime.fromisoformat(body["revoked_at"])
        assert abs(datetime.now(UTC) - revoked_at) < timedelta(minutes=1)
        assert await _status(admin, target) == 401
        assert await _status(admin, manager) == 200

    async def test_revoking_twice_is_idempotent(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        _, target_id, _ = await admin.key_for("acme", "content:read")
        first = await admin.client.post(f"/admin/keys/{target_id}/revoke", headers=auth(manager))
        second = await admin.client.post(f"/admin/keys/{target_id}/revoke", headers=auth(manager))
        assert first.status_code == second.status_code == 200
        assert first.json()["revoked_at"] is not None
        assert second.json()["revoked_at"] == first.json()["revoked_at"]

    async def test_a_key_in_its_rotation_grace_can_be_revoked(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        _, target_id, target = await admin.key_for("acme", "keys:admin")
        rotate = await admin.client.post(
            f"/admin/keys/{target_id}/rotate", json={}, headers=auth(manager)
        )
        assert rotate.status_code == 201
        assert await _status(admin, target) == 200
        revoke = await admin.client.post(f"/admin/keys/{target_id}/revoke", headers=auth(manager))
        assert revoke.status_code == 200
        assert await _status(admin, target) == 401
        assert await _status(admin, rotate.json()["secret"]) == 200


class TestLastUsed:
    async def test_last_used_is_written_by_the_flush_not_per_request(self, admin: Admin) -> None:
        _, _, manager = await admin.key_for("acme", "keys:admin")
        _, used_id, used = await admin.key_for("acme", "keys:admin")
        before_use = datetime.now(UTC)
        assert await _status(admin, used) == 200
        assert await _status(admin, used) == 200

        pending = await admin.client.get(f"/admin/keys/{used_id}", headers=auth(manager))
        assert pending.json()["last_used_at"] is None

        await admin.platform.key_verifier.flush_last_used()

        flushed = await admin.client.get(f"/admin/keys/{used_id}", headers=auth(manager))
        last_used = datetime.fromisoformat(flushed.json()["last_used_at"])
        assert before_use - timedelta(seconds=1) <= last_used <= datetime.now(UTC)
