"""The dashboard page: ``GET /`` of the Platform Dashboard, and ``GET /api/viewer``.

The page is one template (``platform/templates/dashboard.html``) and static files
(``platform/static/dashboard.js`` and ``dashboard.css``, one more script per
section that reads another service: ``dashboard_workflows.js``, ``dashboard_keys.js``,
``dashboard_intake.js``; uPlot from npm for the charts, ``make docs-assets``). Its
sections (overview, traffic, AI, cache, resources, alerts, workflows, intake, keys)
are shown in place: the scripts fetch the JSON APIs with the platform's session
cookie (``Path=/``, so the mounted runtime, gateway and key admin APIs too) and
redraw every refresh, so the page never reloads. No key is kept in the browser.

``GET /api/viewer`` tells the page whether the session is an operator's (the
session body carries the key's tenant and scopes, not whether that tenant is the
operator tenant), so it shows the platform-wide sections and the tenant picker
only to those who may read them; the APIs enforce the same rule on every call.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.db.session import SessionDep
from xynergy.platform.docs_assets import CHART_FILES, installed
from xynergy.platform.docs_pages import render_page
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.routing import api_router
from xynergy.platform.tenancy.repository import TenantRepository
from xynergy.platform_dashboard.auth import MetricsReader

__all__ = [
    "DASHBOARD_CONTENT_SECURITY_POLICY",
    "DashboardUnavailable",
    "Viewer",
    "dashboard_page",
    "router",
]

# Scripts and styles from here only (no inline ones, no eval): uPlot sizes its
# elements through the CSSOM (element.style.x = ...), which style-src does not
# govern, and its stylesheet is an asset. The API's calls go to this origin.
DASHBOARD_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# How often the page reads the APIs again (the page's ?refresh=<seconds> overrides
# it within bounds). The status answer is cached 30 s and rollups close each
# minute, so sooner shows nothing new; and a section makes 5-8 calls a refresh
# against the "reads" rate class (1,000 an hour a key): every 30 s stays under it.
REFRESH_SECONDS = 30

router = api_router(prefix="/api", tags=["dashboard"])


class DashboardUnavailable(XynergyError):
    """uPlot's files are not installed next to the package."""

    status_code = 503
    code = "dashboard_unavailable"
    default_detail = (
        "The dashboard page is not installed on this server: run `make docs-assets` "
        "(npm ci) and restart it. The API is at api/status."
    )


class Viewer(BaseModel):
    """Who the session (or key) reads the dashboard as."""

    tenant_id: str = Field(description="The tenant the calls act for.")
    key_tenant_id: str = Field(description="The key's own tenant.")
    operator: bool = Field(
        description="An operator key (admin, or metrics:read on the operator tenant): it "
        "reads the platform-wide metrics and may pick a tenant."
    )
    admin: bool = Field(description="It may act for another tenant (X-Xynergy-Tenant).")
    scopes: list[str]


@router.get("/viewer")
async def viewer(session: SessionDep, auth: MetricsReader) -> Viewer:
    """Whether the caller is an operator, for the page to show what it may read."""
    operator = auth.is_admin
    if not operator:
        tenant = await TenantRepository(session).get(auth.key_tenant_id)
        operator = tenant is not None and tenant.name == OPERATOR_TENANT_NAME
    return Viewer(
        tenant_id=auth.tenant_id,
        key_tenant_id=auth.key_tenant_id,
        operator=operator,
        admin=auth.is_admin,
        scopes=sorted(auth.scopes),
    )


async def dashboard_page(request: Request) -> Response:
    """The dashboard: sign in with an API key, then watch the platform.

    Served by the platform's ``/`` route (``app.state.home_page``), which brings
    its rate class (the pages') and its public access.
    """
    if not installed(CHART_FILES):
        raise DashboardUnavailable()
    context = {"refresh_seconds": REFRESH_SECONDS}
    return render_page(request, "dashboard.html", DASHBOARD_CONTENT_SECURITY_POLICY, context)
