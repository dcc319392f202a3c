"""Cross-site request forgery defences of cookie-authenticated requests.

A cookie is sent by the browser on its own, so a request that authenticates
with one proves nothing about which page sent it. Two checks make up for that,
on every unsafe method (POST, PUT, PATCH, DELETE):

* ``X-CSRF-Token`` must equal the session's CSRF token: an HMAC keyed by the
  session token, so the server recomputes it from the cookie (nothing more to
  store), a page learns it only from ``POST``/``GET /session`` (same-origin
  JavaScript), and it reveals nothing about the token;
* an ``Origin`` header, when present, must be the request's own origin.

A WebSocket handshake is a GET but a classic forgery vector (browsers send
cookies with it and no preflight): its ``Origin`` is checked too. Requests that
carry a key in ``Authorization`` are not cookie-authenticated and skip both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import Scope

from xynergy.platform.exceptions import Forbidden

__all__ = [
    "CSRF_HEADER",
    "CsrfFailed",
    "check_csrf",
    "check_same_origin",
    "csrf_token_for",
    "is_https",
    "request_origin",
]

CSRF_HEADER = "X-CSRF-Token"
_CSRF_HEADER = CSRF_HEADER.lower().encode()
_ORIGIN = b"origin"
_HOST = b"host"
_FORWARDED_PROTO = b"x-forwarded-proto"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_CONTEXT = b"xynergy web session csrf v1"
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}

IPNetwork = IPv4Network | IPv6Network


class CsrfFailed(Forbidden):
    """A cookie-authenticated unsafe request without proof that our page sent it."""

    code = "csrf_failed"
    default_detail = (
        "A request authenticated by the session cookie must send the session's "
        "X-CSRF-Token header (from POST or GET /session) and come from this origin."
    )


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of the session whose cookie holds ``session_token``."""
    return hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def is_https(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> bool:
    """Whether the client reached us over TLS: directly, or as a trusted proxy says."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    peer = scope.get("client")
    if not peer or not _trusted(peer[0], trusted_proxies):
        return False
    forwarded = _header(scope, _FORWARDED_PROTO)
    # The edge proxy's view comes first in a chain that appends. A client that
    # spoofs it through a proxy that appends only harms itself (a Secure cookie
    # its http connection will not send back).
    return forwarded is not None and forwarded.split(",")[0].strip().lower() == "https"


def _trusted(address: str, trusted_proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)


def request_origin(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> str | None:
    """The request's own origin, ``scheme://host[:port]`` as a browser writes it."""
    host = _header(scope, _HOST)
    if not host:
        return None
    scheme = "https" if is_https(scope, trusted_proxies) else "http"
    host = host.strip().lower()
    default_port = _DEFAULT_PORTS[scheme]
    if host.endswith(default_port):
        host = host[: -len(default_port)]
    return scheme + "://" + host


def check_same_origin(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> None:
    """Refuse a request whose ``Origin`` header names another origin."""
    origin = _header(scope, _ORIGIN)
    if origin is None:
        return
    if origin.strip().lower() != request_origin(scope, trusted_proxies):
        raise CsrfFailed(
            "A request that makes or uses a browser session must come from this origin."
        )


def check_csrf(scope: Scope, session_token: str, trusted_proxies: Sequence[IPNetwork]) -> None:
    """Refuse a cookie-authenticated request that may have been forged by another site."""
    if scope["type"] == "websocket":
        check_same_origin(scope, trusted_proxies)
        return
    if scope.get("method", "GET") in _SAFE_METHODS:
        return
    check_same_origin(scope, trusted_proxies)
    presented = _header(scope, _CSRF_HEADER)
    expected = csrf_token_for(session_token)
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise CsrfFailed()
