"""Keywords endpoints of the ASO Engine."""

from __future__ import annotations

from xynergy.platform.routing import api_router

__all__ = ["router"]

router = api_router(prefix="/api", tags=["keywords"])
