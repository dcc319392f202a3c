"""The rate-limit class of every route of every service, pinned in one table.

A route's class decides which limit it counts against (``reads``, ``writes``,
``ai_generate``, ...) or that it is never limited (exempt: ``None``). A changed
decorator changes the walk, so the change fails here until the table below is
reviewed and updated with it. Only the probes may be exempt.

After a deliberate change, print the current table and paste it below::

    .venv/bin/python -m tests.platform.test_rate_classes
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from xynergy.platform.admin_app import PLATFORM_SLUG, create_admin_app
from xynergy.platform.app import walk_routes
from xynergy.platform.config import Settings
from xynergy.platform.routing import SecureRoute
from xynergy.platform.websocket_routing import SecureWebSocketRoute
from xynergy.server import SERVICES

RouteKey = tuple[str, str, str]  # (service slug, method, path as declared)

PROBES = frozenset({"/healthz", "/readyz"})

# Reviewed when it changes. None: exempt from rate limiting (probes only).
EXPECTED: dict[RouteKey, str | None] = {
    ("ai-assistant", "DELETE", "/api/conversations/{conversation_id}"): "writes",
    ("ai-assistant", "DELETE", "/session"): "session",
    ("ai-assistant", "GET", "/"): "docs",
    ("ai-assistant", "GET", "/api/conversations"): "reads",
    ("ai-assistant", "GET", "/api/conversations/{conversation_id}"): "reads",
    ("ai-assistant", "GET", "/api/conversations/{conversation_id}/actions/{action_id}"): "reads",
    ("ai-assistant", "GET", "/api/conversations/{conversation_id}/export"): "reads",
    ("ai-assistant", "GET", "/docs"): "docs",
    ("ai-assistant", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("ai-assistant", "GET", "/healthz"): None,
    ("ai-assistant", "GET", "/metrics"): "metrics",
    ("ai-assistant", "GET", "/openapi.json"): "docs",
    ("ai-assistant", "GET", "/readyz"): None,
    ("ai-assistant", "GET", "/session"): "session",
    ("ai-assistant", "PATCH", "/api/conversations/{conversation_id}"): "writes",
    ("ai-assistant", "POST", "/api/conversation/message"): "ai_generate",
    ("ai-assistant", "POST", "/api/conversations"): "writes",
    (
        "ai-assistant",
        "POST",
        "/api/conversations/{conversation_id}/actions/{action_id}/confirm",
    ): "workflow_start",
    (
        "ai-assistant",
        "POST",
        "/api/conversations/{conversation_id}/actions/{action_id}/reject",
    ): "writes",
    ("ai-assistant", "POST", "/api/conversations/{conversation_id}/messages"): "ai_generate",
    ("ai-assistant", "POST", "/session"): "sign_in",
    ("ai-routing-engine", "DELETE", "/api/budgets/{period}"): "writes",
    ("ai-routing-engine", "DELETE", "/session"): "session",
    ("ai-routing-engine", "GET", "/"): "docs",
    ("ai-routing-engine", "GET", "/api/budgets"): "reads",
    ("ai-routing-engine", "GET", "/api/spend"): "reads",
    ("ai-routing-engine", "GET", "/api/spend/overview"): "reads",
    ("ai-routing-engine", "GET", "/api/spend/tenants"): "reads",
    ("ai-routing-engine", "GET", "/api/usage"): "reads",
    ("ai-routing-engine", "GET", "/docs"): "docs",
    ("ai-routing-engine", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("ai-routing-engine", "GET", "/healthz"): None,
    ("ai-routing-engine", "GET", "/metrics"): "metrics",
    ("ai-routing-engine", "GET", "/openapi.json"): "docs",
    ("ai-routing-engine", "GET", "/readyz"): None,
    ("ai-routing-engine", "GET", "/session"): "session",
    ("ai-routing-engine", "GET", "/v1/models"): "reads",
    ("ai-routing-engine", "POST", "/api/generate/intelligent"): "ai_generate",
    ("ai-routing-engine", "POST", "/session"): "sign_in",
    ("ai-routing-engine", "POST", "/v1/chat/completions"): "ai_generate",
    ("ai-routing-engine", "PUT", "/api/budgets"): "writes",
    ("aso-engine", "DELETE", "/api/content/{content_id}"): "writes",
    ("aso-engine", "DELETE", "/api/keywords/{keyword_id}"): "writes",
    ("aso-engine", "DELETE", "/session"): "session",
    ("aso-engine", "GET", "/"): "docs",
    ("aso-engine", "GET", "/api/content"): "reads",
    ("aso-engine", "GET", "/api/content/count"): "reads",
    ("aso-engine", "GET", "/api/content/{content_id}"): "reads",
    ("aso-engine", "GET", "/api/keywords"): "reads",
    ("aso-engine", "GET", "/api/keywords/trending"): "reads",
    ("aso-engine", "GET", "/api/keywords/{keyword_id}"): "reads",
    ("aso-engine", "GET", "/api/keywords/{keyword_id}/rankings"): "reads",
    ("aso-engine", "GET", "/docs"): "docs",
    ("aso-engine", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("aso-engine", "GET", "/healthz"): None,
    ("aso-engine", "GET", "/metrics"): "metrics",
    ("aso-engine", "GET", "/openapi.json"): "docs",
    ("aso-engine", "GET", "/readyz"): None,
    ("aso-engine", "GET", "/session"): "session",
    ("aso-engine", "PATCH", "/api/content/{content_id}"): "writes",
    ("aso-engine", "POST", "/api/content"): "writes",
    ("aso-engine", "POST", "/api/keywords"): "writes",
    ("aso-engine", "POST", "/api/keywords/bulk-import"): "writes",
    ("aso-engine", "POST", "/api/rankings"): "writes",
    ("aso-engine", "POST", "/session"): "sign_in",
    ("intelligence-gateway", "DELETE", "/api/forms/{form_id}"): "writes",
    ("intelligence-gateway", "DELETE", "/session"): "session",
    ("intelligence-gateway", "GET", "/"): "docs",
    ("intelligence-gateway", "GET", "/api/beta-applications"): "reads",
    ("intelligence-gateway", "GET", "/api/forms"): "reads",
    ("intelligence-gateway", "GET", "/api/forms/{form_id}"): "reads",
    ("intelligence-gateway", "GET", "/api/forms/{public_id}/token"): "public",
    ("intelligence-gateway", "GET", "/api/stats"): "reads",
    ("intelligence-gateway", "GET", "/api/submissions"): "reads",
    ("intelligence-gateway", "GET", "/api/submissions/export.csv"): "reads",
    ("intelligence-gateway", "GET", "/api/submissions/{submission_id}"): "reads",
    ("intelligence-gateway", "GET", "/docs"): "docs",
    ("intelligence-gateway", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("intelligence-gateway", "GET", "/healthz"): None,
    ("intelligence-gateway", "GET", "/metrics"): "metrics",
    ("intelligence-gateway", "GET", "/openapi.json"): "docs",
    ("intelligence-gateway", "GET", "/readyz"): None,
    ("intelligence-gateway", "GET", "/session"): "session",
    ("intelligence-gateway", "OPTIONS", "/api/beta-applications"): "public",
    ("intelligence-gateway", "OPTIONS", "/api/contact"): "public",
    ("intelligence-gateway", "OPTIONS", "/api/forms/{public_id}/token"): "public",
    ("intelligence-gateway", "PATCH", "/api/forms/{form_id}"): "writes",
    ("intelligence-gateway", "PATCH", "/api/submissions/{submission_id}"): "writes",
    ("intelligence-gateway", "POST", "/api/beta-applications"): "public",
    ("intelligence-gateway", "POST", "/api/contact"): "public",
    ("intelligence-gateway", "POST", "/api/forms"): "writes",
    ("intelligence-gateway", "POST", "/session"): "sign_in",
    ("marketing-engine", "DELETE", "/session"): "session",
    ("marketing-engine", "GET", "/"): "docs",
    ("marketing-engine", "GET", "/analytics/performance"): "reads",
    ("marketing-engine", "GET", "/campaigns"): "reads",
    ("marketing-engine", "GET", "/campaigns/{campaign_id}"): "reads",
    ("marketing-engine", "GET", "/docs"): "docs",
    ("marketing-engine", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("marketing-engine", "GET", "/healthz"): None,
    ("marketing-engine", "GET", "/metrics"): "metrics",
    ("marketing-engine", "GET", "/openapi.json"): "docs",
    ("marketing-engine", "GET", "/readyz"): None,
    ("marketing-engine", "GET", "/session"): "session",
    ("marketing-engine", "GET", "/templates"): "reads",
    ("marketing-engine", "GET", "/templates/{business_type}/{industry}"): "reads",
    ("marketing-engine", "POST", "/campaigns/generate"): "ai_generate",
    ("marketing-engine", "POST", "/campaigns/{campaign_id}/activate"): "writes",
    ("marketing-engine", "POST", "/campaigns/{campaign_id}/approve"): "writes",
    ("marketing-engine", "POST", "/campaigns/{campaign_id}/archive"): "writes",
    ("marketing-engine", "POST", "/campaigns/{campaign_id}/complete"): "writes",
    ("marketing-engine", "POST", "/keywords/research"): "ai_expensive",
    ("marketing-engine", "POST", "/session"): "sign_in",
    ("marketing-engine", "POST", "/templates"): "writes",
    ("marketing-engine", "POST", "/templates/{business_type}/{industry}/draft"): "ai_generate",
    ("marketing-engine", "PUT", "/templates/{business_type}/{industry}"): "writes",
    ("platform-dashboard", "DELETE", "/api/alerts/{rule_id}"): "writes",
    ("platform-dashboard", "DELETE", "/session"): "session",
    ("platform-dashboard", "GET", "/api/alerts"): "reads",
    ("platform-dashboard", "GET", "/api/alerts/events"): "reads",
    ("platform-dashboard", "GET", "/api/alerts/{rule_id}"): "reads",
    ("platform-dashboard", "PATCH", "/api/alerts/{rule_id}"): "writes",
    ("platform-dashboard", "POST", "/api/alerts"): "writes",
    ("platform-dashboard", "GET", "/"): "docs",
    ("platform-dashboard", "GET", "/api/cost"): "reads",
    ("platform-dashboard", "GET", "/api/cost/tenants"): "reads",
    ("platform-dashboard", "GET", "/api/metrics/cache-namespaces"): "reads",
    ("platform-dashboard", "GET", "/api/metrics/routes"): "reads",
    ("platform-dashboard", "GET", "/api/metrics/series"): "reads",
    ("platform-dashboard", "GET", "/api/metrics/series/grouped"): "reads",
    ("platform-dashboard", "GET", "/api/metrics/services"): "reads",
    ("platform-dashboard", "GET", "/api/resources"): "reads",
    ("platform-dashboard", "GET", "/api/status"): "reads",
    ("platform-dashboard", "GET", "/api/viewer"): "reads",
    ("platform-dashboard", "GET", "/docs"): "docs",
    ("platform-dashboard", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("platform-dashboard", "GET", "/healthz"): None,
    ("platform-dashboard", "GET", "/metrics"): "metrics",
    ("platform-dashboard", "GET", "/openapi.json"): "docs",
    ("platform-dashboard", "GET", "/readyz"): None,
    ("platform-dashboard", "GET", "/session"): "session",
    ("platform-dashboard", "POST", "/session"): "sign_in",
    ("platform", "DELETE", "/session"): "session",
    ("platform", "GET", "/"): "docs",
    ("platform", "GET", "/admin/keys"): "admin",
    ("platform", "GET", "/admin/keys/{key_id}"): "admin",
    ("platform", "GET", "/admin/tenants"): "admin",
    ("platform", "GET", "/docs"): "docs",
    ("platform", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("platform", "GET", "/healthz"): None,
    ("platform", "GET", "/metrics"): "metrics",
    ("platform", "GET", "/openapi.json"): "docs",
    ("platform", "GET", "/readyz"): None,
    ("platform", "GET", "/session"): "session",
    ("platform", "POST", "/admin/keys"): "admin",
    ("platform", "POST", "/admin/keys/{key_id}/revoke"): "admin",
    ("platform", "POST", "/admin/keys/{key_id}/rotate"): "admin",
    ("platform", "POST", "/admin/secrets/reload"): "admin",
    ("platform", "POST", "/admin/tenants"): "admin",
    ("platform", "POST", "/session"): "sign_in",
    ("system-runtime", "DELETE", "/api/workflow-schedules/{schedule_id}"): "writes",
    ("system-runtime", "DELETE", "/session"): "session",
    ("system-runtime", "GET", "/"): "docs",
    ("system-runtime", "GET", "/api/workflow-counts"): "reads",
    ("system-runtime", "GET", "/api/workflow-definitions"): "reads",
    ("system-runtime", "GET", "/api/workflow-definitions/{name}"): "reads",
    ("system-runtime", "GET", "/api/workflow-definitions/{name}/versions"): "reads",
    ("system-runtime", "GET", "/api/workflow-operations"): "reads",
    ("system-runtime", "GET", "/api/workflow-schedules"): "reads",
    ("system-runtime", "GET", "/api/workflow-schedules/{schedule_id}"): "reads",
    ("system-runtime", "GET", "/api/workflows"): "reads",
    ("system-runtime", "GET", "/api/workflows/{run_id}"): "reads",
    ("system-runtime", "GET", "/api/workflows/{run_id}/events"): "reads",
    ("system-runtime", "GET", "/docs"): "docs",
    ("system-runtime", "GET", "/docs/assets/{digest}/{name}"): "docs",
    ("system-runtime", "GET", "/healthz"): None,
    ("system-runtime", "GET", "/metrics"): "metrics",
    ("system-runtime", "GET", "/openapi.json"): "docs",
    ("system-runtime", "GET", "/readyz"): None,
    ("system-runtime", "GET", "/session"): "session",
    ("system-runtime", "PATCH", "/api/workflow-schedules/{schedule_id}"): "writes",
    ("system-runtime", "POST", "/api/services/{service}/trigger"): "workflow_start",
    ("system-runtime", "POST", "/api/workflow-definitions"): "writes",
    ("system-runtime", "POST", "/api/workflow-schedules"): "writes",
    ("system-runtime", "POST", "/api/workflows/start"): "workflow_start",
    ("system-runtime", "POST", "/api/workflows/{run_id}/cancel"): "writes",
    ("system-runtime", "POST", "/api/workflows/{run_id}/resume"): "workflow_start",
    ("system-runtime", "POST", "/api/workflows/{run_id}/signal"): "writes",
    ("system-runtime", "POST", "/api/ws-tickets"): "writes",
    ("system-runtime", "POST", "/session"): "sign_in",
    ("system-runtime", "WEBSOCKET", "/ws/workflows/{run_id}"): "reads",
}


def service_apps(settings: Settings) -> dict[str, FastAPI]:
    """Every service app (slug -> app), the platform's admin app included."""
    factories: dict[str, Callable[[Settings], FastAPI]] = {
        **SERVICES,
        PLATFORM_SLUG: create_admin_app,
    }
    return {slug: factory(settings) for slug, factory in factories.items()}


def rate_classes(settings: Settings) -> dict[RouteKey, str | None]:
    """(slug, method, path) -> rate class, for every route of every service app."""
    found: dict[RouteKey, str | None] = {}
    for slug, app in service_apps(settings).items():
        for route in walk_routes(app.routes):
            if isinstance(route, SecureWebSocketRoute):
                found[(slug, "WEBSOCKET", route.path)] = route.rate_class
                continue
            assert isinstance(route, SecureRoute), route
            for method in sorted(route.methods):
                key = (slug, method, route.path)
                assert key not in found, f"{key} is declared twice"
                found[key] = route.rate_class
    return found


def render(table: dict[RouteKey, str | None]) -> str:
    """``table`` as the Python literal to paste into EXPECTED."""

    def literal(value: str | None) -> str:
        # Double quotes, as the formatter writes them, so a paste needs no reformatting.
        return "None" if value is None else json.dumps(value)

    lines = ["EXPECTED: dict[RouteKey, str | None] = {"]
    for key in sorted(table):
        route = ", ".join(literal(part) for part in key)
        lines.append(f"    ({route}): {literal(table[key])},")
    lines.append("}")
    return "\n".join(lines)


class TestRateClasses:
    def test_every_route_has_its_pinned_rate_class(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        walked = rate_classes(make_settings())
        changed = {
            key: (EXPECTED.get(key, "<absent>"), walked.get(key, "<absent>"))
            for key in EXPECTED.keys() | walked.keys()
            if EXPECTED.get(key, "<absent>") != walked.get(key, "<absent>")
        }
        assert not changed, (
            "rate classes differ from the reviewed table (route: (expected, found)); if the "
            "change is deliberate, run `python -m tests.platform.test_rate_classes` and paste:\n"
            + "\n".join(f"  {key}: {value}" for key, value in sorted(changed.items()))
        )

    def test_only_the_probes_are_exempt(self, make_settings: Callable[..., Settings]) -> None:
        walked = rate_classes(make_settings())
        exempt = {key for key, rate_class in walked.items() if rate_class is None}
        slugs = {slug for slug, _, _ in walked}
        assert exempt == {(slug, "GET", probe) for slug in slugs for probe in PROBES}

    def test_the_table_covers_every_service(self) -> None:
        assert {slug for slug, _, _ in EXPECTED} == {*SERVICES, PLATFORM_SLUG}


def main() -> None:
    """Print the current table, ready to paste into EXPECTED."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(environment="test", data_dir=Path(data_dir))
        sys.stdout.write(render(rate_classes(settings)) + "\n")


if __name__ == "__main__":
    main()
