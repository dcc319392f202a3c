"""The Platform Dashboard in process, with an operator key, a tenant reader and a key without
``metrics:read``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp

from tests.helpers import auth, issue_key, metric_value, running, scrape
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.app import SLUG, create_platform_dashboard_app
from xynergy.platform_dashboard.config import DashboardSettings
from xynergy.server import ServiceFactory, build_all_in_one

STATUS = "/api/status"
RESOURCES = "/api/resources"
COMPUTATIONS = "xynergy_dashboard_status_computations_total"


@dataclass
class DashboardApi:
    """``prefix`` is where the dashboard is mounted ("" when standalone)."""

    client: httpx.AsyncClient
    app: ASGIApp
    platform: Platform
    prefix: str
    operator: dict[str, str]
    reader: dict[str, str]
    no_metrics: dict[str, str]

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(
            self.prefix + path, headers=self.reader if headers is None else headers
        )

    async def status(self) -> Any:
        response = await self.get(STATUS)
        assert response.status_code == 200, response.text
        return response.json()

    async def resources(self) -> Any:
        response = await self.get(RESOURCES)
        assert response.status_code == 200, response.text
        return response.json()

    def computations(self) -> float:
        return metric_value(scrape(self.platform), COMPUTATIONS)


def service_of(status: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The entry of service ``name`` in a status body."""
    found = [service for service in status["services"] if service["name"] == name]
    assert found, f"{name} not in {[service['name'] for service in status['services']]}"
    return dict(found[0])


def dashboard_factory(dashboard: DashboardSettings) -> ServiceFactory:
    """The dashboard's factory with ``dashboard`` settings (not read from the environment)."""

    def factory(settings: Settings) -> Any:
        return create_platform_dashboard_app(settings, dashboard=dashboard)

    return factory


@asynccontextmanager
async def _with_keys(app: Any, prefix: str) -> AsyncIterator[DashboardApi]:
    async with running(app) as client:
        platform: Platform = app.state.platform
        _, operator = await issue_key(platform, tenant="platform", scopes=("admin",))
        _, reader = await issue_key(platform, tenant="acme", scopes=("metrics:read",))
        _, other = await issue_key(platform, tenant="acme", scopes=("content:read",))
        yield DashboardApi(
            client=client,
            app=app,
            platform=platform,
            prefix=prefix,
            operator=auth(operator.secret),
            reader=auth(reader.secret),
            no_metrics=auth(other.secret),
        )


@asynccontextmanager
async def all_in_one(
    settings: Settings,
    dashboard: DashboardSettings | None = None,
    others: Mapping[str, ServiceFactory] | None = None,
) -> AsyncIterator[DashboardApi]:
    """The dashboard mounted beside ``others`` (default: every service) in one process."""
    from xynergy.server import SERVICES

    services = dict(SERVICES if others is None else others)
    services[SLUG] = dashboard_factory(dashboard or DashboardSettings())
    async with _with_keys(build_all_in_one(settings, services), "/" + SLUG) as api:
        yield api


@asynccontextmanager
async def standalone(
    settings: Settings, dashboard: DashboardSettings | None = None
) -> AsyncIterator[DashboardApi]:
    """The dashboard alone at its root paths (other services through service_urls)."""
    app = create_platform_dashboard_app(settings, dashboard=dashboard or DashboardSettings())
    async with _with_keys(app, "") as api:
        yield api
