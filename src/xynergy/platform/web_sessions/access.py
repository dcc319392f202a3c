"""How requests and pages reach the caller's browser session."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import Scope

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.web_sessions.cookies import session_token_of
from xynergy.platform.web_sessions.csrf import check_csrf, is_https
from xynergy.platform.web_sessions.service import SessionInfo

__all__ = ["authenticate_session", "cookie_secure", "current_session"]

_STATE = "web_session"


async def authenticate_session(
    connection: HTTPConnection, platform: Any, token: str
) -> AuthContext:
    """The context of a request authenticated by session cookie ``token``, its
    forgery checks passed (``csrf.check_csrf``); the session is kept on the
    request for :func:`current_session`."""
    signed_in: SessionInfo = await platform.web_sessions.authenticate(token)
    check_csrf(connection.scope, token, platform.settings.trusted_proxies)
    setattr(connection.state, _STATE, signed_in)
    return signed_in.auth


async def current_session(connection: HTTPConnection) -> SessionInfo | None:
    """The browser session the request's cookie holds, checked, key included; None
    when there is none or it has ended.

    For pages (public routes) choosing between the sign-in form and the app, and
    for endpoints that want to know a request came from a signed-in page. Costs
    nothing more when the request was already authenticated by its cookie.
    """
    known: SessionInfo | None = getattr(connection.state, _STATE, None)
    if known is not None:
        return known
    token = session_token_of(connection.scope)
    if token is None:
        return None
    try:
        signed_in: SessionInfo = await connection.app.state.platform.web_sessions.authenticate(
            token
        )
    except Unauthorized:
        return None
    setattr(connection.state, _STATE, signed_in)
    return signed_in


def cookie_secure(scope: Scope, settings: Settings) -> bool:
    """Whether the session cookie set in answer to this request is ``Secure``."""
    mode = settings.web_session_cookie_secure
    if mode == "auto":
        return is_https(scope, settings.trusted_proxies)
    return mode == "always"
