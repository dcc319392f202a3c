"""Browser sign-in: an API key exchanged once for a session cookie, with CSRF defences.

* ``POST /session`` (every service app, at its root; public, rate class
  ``sign_in``): ``{"api_key": ...}`` → 201 with the session's body and
  ``Set-Cookie: xynergy_session=...; HttpOnly; SameSite=Strict; Path=/`` (plus
  ``Secure`` over https). ``GET /session``: the same body for the cookie's
  session. ``DELETE /session``: sign-out (needs ``X-CSRF-Token``).
* Every route accepts the cookie in place of ``Authorization: Bearer`` (an
  explicit key wins); cookie-authenticated unsafe methods need ``X-CSRF-Token``
  and a same-origin ``Origin`` (``csrf``).
* Pages: ``await current_session(request)`` → :class:`SessionInfo` or None.

Modules: ``models`` (ORM), ``repository`` (SQL), ``service`` (:class:`WebSessions`,
on ``Platform.web_sessions``), ``cookies``, ``csrf``, ``access`` (what routing and
pages call), ``schemas``, ``endpoints`` (the router; imported by ``platform.app``
only, since it imports ``platform.routing``).
"""

from xynergy.platform.web_sessions.access import (
    authenticate_session,
    cookie_secure,
    current_session,
)
from xynergy.platform.web_sessions.cookies import SESSION_COOKIE, session_token_of
from xynergy.platform.web_sessions.csrf import CSRF_HEADER, CsrfFailed
from xynergy.platform.web_sessions.service import SessionInfo, WebSessions

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CsrfFailed",
    "SessionInfo",
    "WebSessions",
    "authenticate_session",
    "cookie_secure",
    "current_session",
    "session_token_of",
]
