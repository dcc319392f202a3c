"""A running ASO Engine with keys for two tenants, and helpers shared by its domains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import auth, issue_key
from xynergy.platform.runtime import Platform

ApiT = TypeVar("ApiT", bound="TwoTenantApi")
_MAX_PAGES = 200


@dataclass
class TwoTenantApi:
    """``headers`` act for tenant acme, ``other`` for tenant globex."""

    collection: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    app: FastAPI
    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    headers: dict[str, str]
    other_tenant_id: str
    other: dict[str, str]

    async def create(self, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        body = {**self.defaults, **fields}
        response = await self.client.post(
            self.collection, json=body, headers=headers or self.headers
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def list_all(self, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
        """Every item of a list, walked two at a time."""
        items: list[Any] = []
        query: dict[str, Any] = {"limit": 2, **params}
        for _ in range(_MAX_PAGES):
            response = await self.client.get(
                self.collection, params=query, headers=headers or self.headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]
        pytest.fail("pagination did not terminate")


async def start_two_tenants(
    api_class: type[ApiT], app: FastAPI, client: httpx.AsyncClient, scopes: Sequence[str]
) -> ApiT:
    """Keys with ``scopes`` for tenants acme and globex on a running app."""
    platform: Platform = app.state.platform
    tenant_id, issued = await issue_key(platform, tenant="acme", scopes=scopes)
    other_id, other = await issue_key(platform, tenant="globex", scopes=scopes)
    return api_class(
        app, client, platform, tenant_id, auth(issued.secret), other_id, auth(other.secret)
    )
