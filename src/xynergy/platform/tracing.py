"""Request ids: accepted from ``X-Request-ID`` or generated, and visible everywhere.

The id lives in a context variable so that logs, error bodies and outbound
inter-service calls all see the id of the request they serve without passing it
through every function.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

__all__ = ["REQUEST_ID_HEADER", "current_request_id", "new_request_id", "accept_request_id"]

REQUEST_ID_HEADER = "X-Request-ID"

# Only characters that are safe in logs and headers; anything else is replaced so
# a caller cannot inject log lines or header breaks through the id. fullmatch, not
# match with $: $ also matches before a trailing newline.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]+")

_request_id: ContextVar[str | None] = ContextVar("xynergy_request_id", default=None)


def new_request_id() -> str:
    """Generate a fresh request id (32 hex characters)."""
    return secrets.token_hex(16)


def accept_request_id(candidate: str | None, *, max_length: int) -> str:
    """Return the caller's id when it is safe, else a generated one."""
    if candidate and len(candidate) <= max_length and _SAFE_ID.fullmatch(candidate):
        return candidate
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


def set_request_id(request_id: str | None) -> object:
    """Bind ``request_id`` to the current context; returns a token for reset."""
    return _request_id.set(request_id)


def reset_request_id(token: object) -> None:
    """Undo :func:`set_request_id`."""
    _request_id.reset(token)  # type: ignore[arg-type]
