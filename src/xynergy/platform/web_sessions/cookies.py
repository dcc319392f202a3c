"""The session cookie: its token, how it is read from a request and set on a response."""

from __future__ import annotations

import hashlib
import re
import secrets

from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import Scope

__all__ = [
    "SESSION_COOKIE",
    "clear_session_cookie",
    "hash_token",
    "new_token",
    "session_token_of",
    "set_session_cookie",
]

SESSION_COOKIE = "xynergy_session"
_TOKEN_BYTES = 32
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_COOKIE = b"cookie"
_MARKER = SESSION_COOKIE + "="


def new_token() -> str:
    """A fresh session token: 256 random bits."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 hex of a session token: all the database keeps of it."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def session_token_of(scope: Scope) -> str | None:
    """The well-formed session token the request's cookies carry, if any.

    A malformed value is treated as absent, before any hashing or lookup.
    """
    for name, value in scope.get("headers", ()):
        if name != _COOKIE:
            continue
        text = value.decode("latin-1")
        if _MARKER not in text:
            continue  # the common case (other cookies only) skips the parse
        token = cookie_parser(text).get(SESSION_COOKIE)
        if token is not None and _TOKEN.fullmatch(token):
            return token
    return None


def set_session_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, Path=/ (every mounted
    service); no Max-Age, so the browser drops it when it closes (the server ends
    it at the session's expiry anyway)."""
    response.headers.append("set-cookie", _cookie(token, secure=secure))


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    """Tell the browser to drop the session cookie now (Max-Age=0)."""
    response.headers.append("set-cookie", _cookie("", secure=secure, clear=True))


def _cookie(value: str, *, secure: bool, clear: bool = False) -> str:
    # Written by hand, not with set_cookie(): the attributes are exactly the
    # documented ones (SameSite=Strict, capitalised as the RFC writes it), and the
    # value is a token of the URL-safe alphabet, which needs no quoting.
    parts = [f"{SESSION_COOKIE}={value}", "HttpOnly", "SameSite=Strict", "Path=/"]
    if clear:
        parts[1:1] = ["Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
