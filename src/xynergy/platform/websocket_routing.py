"""Default deny for WebSockets: authenticated and rate limited before the upgrade is accepted.

FastAPI's own WebSocket routes (``APIWebSocketRoute``) would bypass SecureRoute,
so ``create_service_app`` refuses them. A :class:`SecureWebSocketRoute` runs what a
SecureRoute runs — authentication (an API key in ``Authorization: Bearer`` or
``X-API-Key``, or an internal token, through the same ``KeyVerifier``), failed
authentications counted per address, the scope check and the route class's rate
limit — before its endpoint is called, so before the endpoint can accept.

A browser cannot set headers on a WebSocket: a route may also take a short-lived,
single-use ticket in ``?ticket=`` through its ``redeem_ticket``. A long-lived key
is never read from the URL.

A refusal before accept is an HTTP response, not a WebSocket close. With the ASGI
WebSocket Denial Response extension (uvicorn offers it) the client gets the
platform's error as usual: 401, 403, 404 or 429 with the JSON error body. A server
without the extension can only close before accept, which it answers as HTTP 403;
the close code (4000 + the status, e.g. 4401) is then all a client may learn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.responses import Response
from starlette.routing import Match, WebSocketRoute
from starlette.types import Scope
from starlette.websockets import WebSocket

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import RequireScopes
from xynergy.platform.errors import error_body
from xynergy.platform.exceptions import Unauthorized, XynergyError
from xynergy.platform.rate_limit import bind_request, unbind_request
from xynergy.platform.routing import (
    _authenticate_or_count,
    _count_failed_authentication,
    _credentials,
)

__all__ = ["DENIAL_EXTENSION", "SecureWebSocketRoute", "TicketRedeemer", "deny"]

DENIAL_EXTENSION = "websocket.http.response"
TicketRedeemer = Callable[[WebSocket, str], Awaitable[AuthContext]]
WebSocketEndpoint = Callable[[WebSocket], Awaitable[None]]
# Close codes 4000-4999 are the application's: 4000 + the HTTP status it stands for.
_CLOSE_CODE_BASE = 4000


async def deny(websocket: WebSocket, error: XynergyError) -> None:
    """Refuse a WebSocket that is not accepted yet with ``error``.

    An HTTP response in the platform's error shape where the server supports
    denial responses, else a close before accept (code 4000 + status).
    """
    if DENIAL_EXTENSION in websocket.scope.get("extensions", {}):
        response = Response(
            error_body(error.code, error.detail),
            status_code=error.status_code,
            headers=error.headers,
            media_type="application/json",
        )
        await websocket.send_denial_response(response)
        return
    await websocket.close(code=_CLOSE_CODE_BASE + error.status_code, reason=error.code)


class SecureWebSocketRoute(WebSocketRoute):
    """A WebSocket route whose endpoint only runs for an authenticated, authorised,
    rate-limited caller; ``websocket.state.auth`` holds who it is."""

    def __init__(
        self,
        path: str,
        endpoint: WebSocketEndpoint,
        *,
        scopes: Iterable[str],
        rate_class: str = "reads",
        redeem_ticket: TicketRedeemer | None = None,
        name: str | None = None,
    ) -> None:
        self.required_scopes: frozenset[str] = frozenset(scopes)
        if not self.required_scopes:
            # There is no public WebSocket: the route walk requires a scope on each.
            raise ValueError(f"WebSocket route {path!r} must require a scope")
        self.is_public = False
        self.rate_class: str | None = rate_class
        self.redeem_ticket = redeem_ticket
        self._scope_check = RequireScopes(*self.required_scopes).check
        self._inner = endpoint

        async def guarded(websocket: WebSocket) -> None:
            try:
                websocket.state.auth = await self._admit(websocket)
            except XynergyError as refused:
                await deny(websocket, refused)
                return
            await endpoint(websocket)

        super().__init__(path, guarded, name=name or endpoint.__name__)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            # As FastAPI does for its routes: authentication reads the matched
            # route's scopes (an admin key must name the tenant it acts for).
            child_scope["route"] = self
        return match, child_scope

    async def _admit(self, websocket: WebSocket) -> AuthContext:
        platform: Any = websocket.app.state.platform
        service: str = websocket.app.state.service_slug
        ticket = websocket.query_params.get("ticket")
        presented = _credentials(websocket.scope)
        has_header_credentials = bool(presented.api_key or presented.internal_token)
        if ticket is not None and self.redeem_ticket is not None and not has_header_credentials:
            auth = await self._redeem(websocket, ticket, platform, service)
        else:
            auth = await _authenticate_or_count(websocket, platform, service)
        self._scope_check(auth)
        # An internal call was already counted at the edge that minted it.
        if self.rate_class is not None and auth.via != "internal":
            bound, token = bind_request(self.path)
            bound.tenant_id = auth.key_tenant_id
            try:
                await platform.rate_limiter.hit(
                    self.rate_class, "key:" + auth.key_id, service=service
                )
            finally:
                unbind_request(token)
        return auth

    async def _redeem(
        self, websocket: WebSocket, ticket: str, platform: Any, service: str
    ) -> AuthContext:
        assert self.redeem_ticket is not None  # noqa: S101 - checked by the caller
        try:
            return await self.redeem_ticket(websocket, ticket)
        except Unauthorized:
            platform.metrics.auth_failures.labels(service=service, status="401").inc()
            await _count_failed_authentication(websocket, platform, service)
            raise
