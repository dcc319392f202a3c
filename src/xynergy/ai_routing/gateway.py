"""What both AI endpoints share: the running engine, the caller, cache directives."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from xynergy.ai_routing.catalogue import Catalogue
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.lineup import LiveLineup
from xynergy.ai_routing.routing.request_memo import RequestMemo
from xynergy.ai_routing.routing.router import AiRouter, Caller
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.ledger import UsageLedger
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.tracing import current_request_id

__all__ = ["AiEngine", "CacheDirectives", "cache_directives", "caller_of", "engine_of"]


@dataclass
class AiEngine:
    """The AI Routing Engine's long-lived parts, created at start-up."""

    ai: AiSettings
    lineup: LiveLineup
    router: AiRouter
    ledger: UsageLedger
    budgets: BudgetGuard
    requests: RequestMemo

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue in use now (a reload may replace it)."""
        return self.lineup.current.catalogue

    @property
    def models_body(self) -> bytes:
        """``GET /v1/models``'s answer for the catalogue in use."""
        return self.lineup.current.models_body


@dataclass(frozen=True, slots=True)
class CacheDirectives:
    lookup: bool
    store: bool


def engine_of(request: Request) -> AiEngine:
    """The engine of the app serving ``request``."""
    engine: AiEngine = request.app.state.ai
    return engine


def caller_of(request: Request, auth: AuthContext) -> Caller:
    """Usage and budgets are kept per tenant and key (an internal call carries the
    key of the request that made it)."""
    return Caller(
        tenant_id=auth.tenant_id,
        key_id=auth.key_id or None,
        request_id=current_request_id() or "",
        service=request.app.state.service_slug,
    )


def cache_directives(request: Request) -> CacheDirectives:
    """``Cache-Control: no-cache`` skips the lookup, ``no-store`` the store (RFC 9111)."""
    header = request.headers.get("cache-control", "").lower()
    directives = {part.strip().split("=", 1)[0] for part in header.split(",")}
    return CacheDirectives(lookup="no-cache" not in directives, store="no-store" not in directives)
