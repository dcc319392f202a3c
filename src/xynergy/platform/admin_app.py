"""The platform's own service: the admin API for tenants, keys and secrets."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.platform.secrets.endpoints import router as secrets_router
from xynergy.platform.tenancy.endpoints import router as admin_router

__all__ = ["PLATFORM_SLUG", "create_admin_app"]

PLATFORM_SLUG = "platform"


def create_admin_app(settings: Settings, platform: Platform | None = None) -> FastAPI:
    """The platform admin app (mounted at the root in all-in-one mode)."""
    return create_service_app(
        slug=PLATFORM_SLUG,
        title="Xynergy Platform",
        settings=settings,
        routers=[admin_router, secrets_router],
        platform=platform,
    )
