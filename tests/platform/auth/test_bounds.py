"""Oversized or malformed credentials are refused before any expensive work."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import auth, issue_key, running
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.config import Settings


class TestCredentialBounds:
    async def test_an_oversized_bearer_is_malformed(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = create_admin_app(make_settings())
        async with running(app) as client:
            response = await client.get("/admin/keys", headers=auth("xyn_live_" + "A" * 8000))
        assert response.status_code == 401
        assert response.json()["detail"] == "The API key is malformed."

    async def test_an_admin_acting_for_a_non_id_gets_404(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = create_admin_app(make_settings())
        async with running(app) as client:
            _, admin = await issue_key(app.state.platform, tenant="platform", scopes=["admin"])
            headers = {**auth(admin.secret), "X-Xynergy-Tenant": "x" * 5000}
            response = await client.get("/admin/keys", headers=headers)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"

    async def test_a_scope_name_over_its_bound_is_422_and_writes_nothing(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = create_admin_app(make_settings())
        async with running(app) as client:
            operator, admin = await issue_key(
                app.state.platform, tenant="platform", scopes=["admin"]
            )
            headers = {**auth(admin.secret), "X-Xynergy-Tenant": operator}
            response = await client.post(
                "/admin/keys",
                headers=headers,
                json={"name": "long", "scopes": ["content:" + "r" * 100]},
            )
            listed = await client.get("/admin/keys", headers=headers)
        assert response.status_code == 422
        assert "scopes.0" in response.json()["detail"]
        assert [key["name"] for key in listed.json()["items"]] == ["test"]
