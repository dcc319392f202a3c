"""Admin API: reload secrets and the AI catalogue now, on the replica that answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.logging import get_logger
from xynergy.platform.routing import api_router, rate_limit
from xynergy.platform.secrets.registry import SecretsRegistry
from xynergy.platform.secrets.schemas import SecretReloadFailure, SecretsReloaded
from xynergy.platform.tracing import current_request_id

__all__ = ["router"]

log = get_logger(__name__)

router = api_router(prefix="/admin", tags=["admin"])

AdminAuth = Annotated[AuthContext, Depends(require_scopes("admin"))]


@router.post("/secrets/reload")
@rate_limit("admin")
async def reload_secrets(request: Request, auth: AdminAuth) -> SecretsReloaded:
    """Re-read secret files and the AI catalogue; a refused one keeps the running value."""
    registry: SecretsRegistry = request.app.state.platform.secrets
    report = await registry.reload("admin")
    # The audit trail of an admin action: who asked, in which request, and what
    # changed, by name.
    log.info(
        "audit.secrets_reload",
        request_id=current_request_id(),
        key_id=auth.key_id,
        tenant_id=auth.key_tenant_id,
        reloaded=report.reloaded,
        unchanged=report.unchanged,
        failed=[failure.secret for failure in report.failed],
    )
    return SecretsReloaded(
        trigger=report.trigger,
        reloaded=report.reloaded,
        unchanged=report.unchanged,
        failed=[SecretReloadFailure(secret=f.secret, reason=f.reason) for f in report.failed],
    )
