"""The request middleware's cache of metric children stays within its setting."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import generate_latest
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.helpers import metric_value
from xynergy.platform.config import Settings
from xynergy.platform.middleware import RequestContextMiddleware
from xynergy.platform.monitoring import PlatformMetrics

CAP = 4
ROUTES = 3 * CAP


async def matched(scope: Scope, receive: Receive, send: Send) -> None:
    """A routed endpoint: the router puts the matched route in the scope."""
    index = int(scope["path"].rsplit("/", 1)[1])
    scope["route"] = Route(f"/r{index}", endpoint=matched)
    await send({"type": "http.response.start", "status": 200 + index % 3, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def call(app: RequestContextMiddleware, path: str) -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, object]) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    await app(scope, receive, send)


class TestSeriesCache:
    async def test_it_stays_at_the_cap_and_every_request_is_still_counted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(request_metrics_series_cache_max_entries=CAP)
        metrics = PlatformMetrics()
        app = RequestContextMiddleware(
            matched, service="svc", settings=settings, metrics=lambda: metrics
        )
        for index in range(ROUTES):
            await call(app, f"/r/{index}")
            await call(app, f"/r/{index}")
        assert len(app._series) == CAP
        text = generate_latest(metrics.registry).decode()
        for index in range(ROUTES):
            labels = {"service": "svc", "route": f"/r{index}", "status": str(200 + index % 3)}
            assert metric_value(text, "xynergy_http_requests_total", **labels) == 2
