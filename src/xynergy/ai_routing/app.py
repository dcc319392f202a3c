"""The AI Routing Engine service app."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.ai_routing.catalogue import load_catalogue
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.gateway import AiEngine
from xynergy.ai_routing.generate.endpoints import router as generate_router
from xynergy.ai_routing.lineup import LiveLineup
from xynergy.ai_routing.openai_compat.endpoints import router as openai_router
from xynergy.ai_routing.openai_compat.errors import OPENAI_ERRORS
from xynergy.ai_routing.reloading import PART_NAME, AiLineupPart
from xynergy.ai_routing.routing.metrics import AiMetrics
from xynergy.ai_routing.routing.request_memo import RequestMemo
from xynergy.ai_routing.routing.router import CACHE_NAMESPACE, AiRouter
from xynergy.ai_routing.routing.shared_flight import SharedFlights
from xynergy.ai_routing.routing.upstream import UpstreamCaller
from xynergy.ai_routing.usage.budgets import CACHE_NAMESPACE as BUDGETS_NAMESPACE
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.endpoints import router as usage_router
from xynergy.ai_routing.usage.ledger import UsageLedger
from xynergy.ai_routing.usage.spend.endpoints import router as spend_router
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.error_shapes import shape_errors_under
from xynergy.platform.runtime import Platform

__all__ = ["SLUG", "create_ai_routing_app"]

SLUG = "ai-routing-engine"


def create_ai_routing_app(
    settings: Settings, platform: Platform | None = None, ai: AiSettings | None = None
) -> FastAPI:
    """The AI Routing Engine; its own settings come from ``XYNERGY_AI_*`` unless given."""
    ai = ai or AiSettings()
    # Read now, not at start-up: a broken catalogue stops the process before it serves.
    load_catalogue(ai.catalogue)

    async def start(shared: Platform) -> None:
        # The shortest TTL bounds how long a replica's in-process copy may outlive
        # an entry; each entry is stored with its own TTL (stable or volatile).
        shared.cache.set_default_ttl(CACHE_NAMESPACE, ai.cache_volatile_ttl_seconds)
        shared.cache.set_default_ttl(BUDGETS_NAMESPACE, ai.budget_cache_ttl_seconds)
        metrics = AiMetrics(shared.metrics)
        installed: list[LiveLineup] = []
        # The first load goes through the registry too, so the catalogue and keys
        # are polled, reported and reloaded (SIGHUP, admin call) like every secret.
        shared.secrets.register(
            AiLineupPart(
                ai=ai,
                http=shared.http,
                registry=shared.secrets,
                max_response_bytes=settings.http_max_response_bytes,
                live=lambda: installed[0] if installed else None,
                install=lambda lineup: installed.append(LiveLineup(lineup)),
            )
        )
        lineup = installed[0]
        ledger = UsageLedger(ai=ai, sessionmaker=shared.sessionmaker, metrics=shared.metrics)
        budgets = BudgetGuard(
            ai=ai,
            sessionmaker=shared.sessionmaker,
            redis=shared.redis,
            cache=shared.cache,
            key_prefix=settings.redis_key_prefix,
            redis_retry_after_seconds=settings.redis_unavailable_retry_after_seconds,
        )
        upstream = UpstreamCaller(
            breakers=shared.breakers,
            metrics=metrics,
            breaker_reset_seconds=settings.breaker_reset_seconds,
        )
        shared_flights = None
        if ai.shared_dedup_enabled and shared.redis is not None and settings.redis_url:
            shared_flights = SharedFlights(
                ai=ai,
                redis=shared.redis,
                redis_url=settings.redis_url,
                key_prefix=settings.redis_key_prefix,
                metrics=metrics,
                reconnect_backoff_seconds=settings.redis_reconnect_backoff_seconds,
                socket_timeout_seconds=settings.redis_socket_timeout_seconds,
            )
            await shared_flights.start()
        router = AiRouter(
            ai=ai,
            lineup=lineup,
            upstream=upstream,
            cache=shared.cache,
            ledger=ledger,
            budgets=budgets,
            limiter=shared.rate_limiter,
            metrics=metrics,
            shared_flights=shared_flights,
        )
        app.state.ai = AiEngine(
            ai=ai,
            lineup=lineup,
            router=router,
            ledger=ledger,
            budgets=budgets,
            requests=RequestMemo(
                max_entries=ai.request_memo_max_entries,
                max_body_bytes=ai.request_memo_max_body_bytes,
            ),
        )
        await ledger.start()

    async def stop(shared: Platform) -> None:
        shared.secrets.unregister(PART_NAME)
        engine: AiEngine | None = getattr(app.state, "ai", None)
        if engine is None:
            return
        await engine.router.close()
        await engine.budgets.close()
        await engine.ledger.stop()

    app = create_service_app(
        slug=SLUG,
        title="Xynergy AI Routing Engine",
        settings=settings,
        routers=[openai_router, generate_router, usage_router, spend_router],
        platform=platform,
        on_startup=[start],
        on_shutdown=[stop],
    )
    # OpenAI's SDKs read every answer under /v1, an unknown path or a refused body too.
    shape_errors_under(app, openai_router.prefix, OPENAI_ERRORS)
    return app
