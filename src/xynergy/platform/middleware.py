"""Pure ASGI middleware: request context (id, headers, metrics, access log) and body limit.

Pure ASGI rather than ``BaseHTTPMiddleware``: the latter runs each request
through an extra task and stream wrapper, which costs a large share of a trivial
request's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from re import Pattern
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xynergy.platform.config import Settings
from xynergy.platform.db.busy import database_busy, database_unavailable
from xynergy.platform.error_shapes import error_shape_for
from xynergy.platform.logging import AccessLog, get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.tracing import (
    REQUEST_ID_HEADER,
    accept_request_id,
    current_request_id,
    reset_request_id,
    set_request_id,
)

__all__ = ["BodySizeLimitMiddleware", "RequestContextMiddleware", "RouteOwnedCorsMiddleware"]

log = get_logger("xynergy.access")

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
_UNMATCHED_ROUTE = "<unmatched>"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()
_NO_STORE = (b"cache-control", b"no-store")
_CSP_HEADER = b"content-security-policy"
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if settings.environment == "production" and settings.hsts_max_age_seconds:
        value = f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
        headers.append((b"strict-transport-security", value.encode()))
    return headers


async def _send_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    # Before routing (the body limit) no route is in scope: the shape then comes
    # from the path prefix the app registered (OpenAI's under the AI gateway's /v1).
    body = error_shape_for(scope).render(status, code, detail, current_request_id())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(
                    (name.lower().encode(), value.encode())
                    for name, value in (headers or {}).items()
                ),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Request id, security headers, metrics, access log, and the last-resort 500.

    On the path of every request, so it avoids per-request work that can be done
    once: headers are pre-encoded, and metric children are looked up once per
    (method, route, status) rather than through ``labels()`` each time.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        settings: Settings,
        metrics: Callable[[], PlatformMetrics],
        csp: str = API_CONTENT_SECURITY_POLICY,
    ) -> None:
        self.app = app
        self.service = service
        # A getter: the platform (and its metrics) opens in lifespan, after the
        # middleware stack is built.
        self.metrics = metrics
        self.max_id_length = settings.request_id_max_length
        self.access_log = AccessLog() if settings.access_log else None
        self.extra_headers = _security_headers(settings)
        # The app's policy, unless a response carries its own: only the docs and
        # site pages (platform/docs_pages.py) do, each with a policy made for it.
        # Browsers enforce every CSP header they get, so one must replace the other.
        self.csp_header = (_CSP_HEADER, csp.encode())
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._series_max = settings.request_metrics_series_cache_max_entries
        self._series_metrics: PlatformMetrics | None = None
        self.database_retry_after = settings.database_busy_retry_after_seconds
        self.database_unavailable_retry_after = settings.database_unavailable_retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(
            _header(scope["headers"], b"x-request-id"), max_length=self.max_id_length
        )
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        extra = [*self.extra_headers, (_REQUEST_ID_HEADER_BYTES, request_id.encode())]

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append(_NO_STORE)
                if _CSP_HEADER not in names:
                    headers.append(self.csp_header)
                headers.extend(extra)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        except Exception as exc:
            # Lock contention or a lost database outside the app's handlers (a
            # middleware's or a dependency's own unit of work) is still a 503 to
            # retry, not a bug.
            busy = database_busy(
                exc, retry_after_seconds=self.database_retry_after
            ) or database_unavailable(
                exc, retry_after_seconds=self.database_unavailable_retry_after
            )
            if busy is None:
                log.exception("request.unhandled_error", path=scope.get("path"))
            else:
                log.warning("request.database_error", code=busy.code, path=scope.get("path"))
            if scope["type"] == "http" and not response_started:
                if busy is not None:
                    await _send_error(
                        scope,
                        send_with_context,
                        busy.status_code,
                        busy.code,
                        busy.detail,
                        busy.headers,
                    )
                else:
                    await _send_error(
                        scope,
                        send_with_context,
                        500,
                        "internal_error",
                        "The server could not complete the request.",
                    )
        finally:
            self._record(scope, status, time.perf_counter() - started, request_id)
            reset_request_id(token)

    def _children(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        metrics = self.metrics()
        if metrics is not self._series_metrics:
            self._series.clear()
            self._series_metrics = metrics
        key = (method, template, status)
        children = self._series.get(key)
        if children is None:
            children = (
                metrics.requests.labels(self.service, method, template, str(status)),
                metrics.latency.labels(self.service, method, template),
            )
            # Label values are bounded (route templates, methods, statuses); the
            # cap is a second line of defence, not the bound itself.
            if len(self._series) < self._series_max:
                self._series[key] = children
        return children

    def _record(self, scope: Scope, status: int, elapsed: float, request_id: str) -> None:
        route = scope.get("route")
        # Only a matched endpoint's template is a label; a Mount (or nothing) means
        # no route matched, and raw paths would make label values unbounded.
        template = route.path if isinstance(route, Route) else _UNMATCHED_ROUTE
        method = scope.get("method", "WS")
        counter, histogram = self._children(method, template, status)
        counter.inc()
        histogram.observe(elapsed)
        if scope["type"] == "http":
            # A WebSocket's time is its connection's life, not a latency.
            self.metrics().rollups.request(self.service, method, template, status, elapsed)
        if self.access_log is not None:
            self.access_log.write(self.service, method, template, status, elapsed, request_id)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class _BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing re-raises
    it unchanged (it turns other exceptions into a 400) and the error handler
    renders it as 413 in the platform's shape."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        upload_paths: Sequence[Pattern[str]] = (),
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        # Route patterns (relative to the app) of endpoints marked accepts_uploads.
        self.upload_paths = tuple(upload_paths)
        self.max_upload_bytes = max_upload_bytes

    def _limit_for(self, scope: Scope) -> int:
        if self.upload_paths:
            path = scope["path"][len(scope.get("root_path", "")) :]
            if any(pattern.match(path) for pattern in self.upload_paths):
                return self.max_upload_bytes
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit_for(scope)
        headers = scope["headers"]
        declared = _header(headers, b"content-length")
        if (
            declared is None
            and scope["method"] in _BODYLESS_METHODS
            and _header(headers, b"transfer-encoding") is None
        ):
            # HTTP/1.1: no length and no chunking means no body to limit.
            await self.app(scope, receive, send)
            return
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > max_bytes
        ):
            await _send_error(scope, send, 413, "payload_too_large", _too_large(max_bytes))
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _send_error(scope, send, 413, "payload_too_large", _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"The request body exceeds {max_bytes} bytes."


class RouteOwnedCorsMiddleware:
    """Starlette's CORS for every path except those whose routes answer CORS themselves.

    Public intake forms allow a different list of origins per form; the app-wide
    list would otherwise answer their preflights first (and wrongly).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        own_paths: Sequence[Pattern[str]] = (),
        allow_origins: Sequence[str],
        allow_methods: Sequence[str],
        allow_headers: Sequence[str],
        expose_headers: Sequence[str],
        max_age: int,
    ) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
            allow_credentials=False,
            max_age=max_age,
        )
        self.own_paths = tuple(own_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.own_paths:
            path = scope["path"][len(scope.get("root_path", "")) :]
            if any(pattern.match(path) for pattern in self.own_paths):
                await self.app(scope, receive, send)
                return
        await self.cors(scope, receive, send)
