"""``/session`` on every service app: browser sign-in, its state, sign-out.

The three routes are public: they authenticate the session themselves (a key in
the body, or the cookie), since no API key is presented. Every other route takes
the cookie in place of a key through ``routing.authenticate``.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from xynergy.platform.exceptions import RateLimited, Unauthorized
from xynergy.platform.routing import (
    _count_failed_authentication,
    api_router,
    public,
    raises,
    rate_limit,
)
from xynergy.platform.web_sessions.access import cookie_secure
from xynergy.platform.web_sessions.cookies import (
    clear_session_cookie,
    session_token_of,
    set_session_cookie,
)
from xynergy.platform.web_sessions.csrf import CsrfFailed, check_csrf, check_same_origin
from xynergy.platform.web_sessions.schemas import SessionBody, SignIn
from xynergy.platform.web_sessions.service import SessionInfo

__all__ = ["SESSION_RATE_CLASS", "SIGN_IN_RATE_CLASS", "sessions_router"]

SIGN_IN_RATE_CLASS = "sign_in"
SESSION_RATE_CLASS = "session"
# The body carries the CSRF token: no cache between the page and us may keep it.
_NO_STORE = {"Cache-Control": "no-store"}
_NO_SESSION = "Not signed in: POST /session with an API key first."

sessions_router = api_router(tags=["session"])


async def _count_refusal(request: Request) -> None:
    """Count a failed sign-in or session like a failed authentication (past the
    address's budget this raises 429 instead)."""
    platform = request.app.state.platform
    service = request.app.state.service_slug
    platform.metrics.auth_failures.labels(service=service, status="401").inc()
    await _count_failed_authentication(request, platform, service)


def _answer(info: SessionInfo, status_code: int) -> JSONResponse:
    return JSONResponse(info.body(), status_code=status_code, headers=_NO_STORE)


@sessions_router.post("/session", status_code=201, response_model=SessionBody)
@public
@rate_limit(SIGN_IN_RATE_CLASS)
@raises(Unauthorized, CsrfFailed, RateLimited)
async def sign_in(request: Request, body: SignIn) -> Response:
    """Exchange an API key for a session cookie (HttpOnly, SameSite=Strict) and its CSRF token."""
    platform = request.app.state.platform
    # Another site must not sign a browser in to its own key (login forgery).
    check_same_origin(request.scope, platform.settings.trusted_proxies)
    try:
        token, info = await platform.web_sessions.sign_in(body.api_key)
    except Unauthorized:
        await _count_refusal(request)
        raise
    response = _answer(info, 201)
    set_session_cookie(response, token, secure=cookie_secure(request.scope, platform.settings))
    return response


@sessions_router.get("/session", response_model=SessionBody)
@public
@rate_limit(SESSION_RATE_CLASS)
@raises(Unauthorized, RateLimited)
async def read_session(request: Request) -> Response:
    """The session the cookie holds, with its CSRF token (for a page after a reload)."""
    token = session_token_of(request.scope)
    if token is None:
        raise Unauthorized(_NO_SESSION)
    try:
        info = await request.app.state.platform.web_sessions.authenticate(token)
    except Unauthorized:
        await _count_refusal(request)
        raise
    return _answer(info, 200)


@sessions_router.delete("/session", status_code=204)
@public
@rate_limit(SESSION_RATE_CLASS)
@raises(Unauthorized, CsrfFailed, RateLimited)
async def sign_out(request: Request) -> Response:
    """End the session the cookie holds and clear the cookie (needs X-CSRF-Token)."""
    platform = request.app.state.platform
    token = session_token_of(request.scope)
    if token is None:
        raise Unauthorized(_NO_SESSION)
    # The CSRF token follows from the cookie alone, so a session whose key was
    # revoked meanwhile can still be signed out of.
    check_csrf(request.scope, token, platform.settings.trusted_proxies)
    await platform.web_sessions.sign_out(token)
    response = Response(status_code=204, headers=_NO_STORE)
    clear_session_cookie(response, secure=cookie_secure(request.scope, platform.settings))
    return response
