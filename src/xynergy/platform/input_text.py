"""Text no endpoint can handle, refused before the endpoint runs.

Two kinds of text used to reach the database or a driver and come back as 500s:

* NUL: PostgreSQL's text types refuse it (SQLite keeps it, so the same request
  behaved differently per database).
* Text that is not Unicode: a lone UTF-16 surrogate, which JSON can spell as
  ``"\\ud800"`` and Python's ``json`` keeps in a ``str``, cannot be encoded as
  UTF-8 by any driver, cache key or upstream call; percent-encoded bytes that are
  not UTF-8 are silently turned into U+FFFD by the ASGI layer instead.

:func:`check_request_text` (run by every ``SecureRoute`` before its endpoint)
refuses both in the path and the query string, and lone surrogates in JSON
bodies, with a 422 in the platform's shape. NUL inside a JSON body is left to
the schema types (:mod:`xynergy.platform.text`): a prompt for a model may carry
it harmlessly, a stored field may not.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request
from starlette.types import Scope

from xynergy.platform.exceptions import ValidationFailed

__all__ = [
    "check_json_text",
    "check_request_text",
    "check_url_text",
    "is_storable_text",
    "is_unicode",
    "text_problem",
]

_NUL = "\x00"
# A high surrogate escape not followed by a low one, or a low one not preceded by
# a high one. Only a filter (an escaped backslash can fool it): a match is then
# confirmed on the parsed body.
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
# A surrogate encoded as UTF-8 bytes (not valid UTF-8, yet Python's json decodes
# bytes with "surrogatepass").
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_JSON_MEDIA_SUFFIX = "json"


def is_unicode(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (holds no lone surrogate)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (NUL, lone surrogate), or None."""
    if _NUL in value:
        return "NUL characters are not allowed"
    if not is_unicode(value):
        return "lone UTF-16 surrogates are not allowed"
    return None


def is_storable_text(value: str) -> bool:
    """Whether every database and driver the platform uses can store ``value``."""
    return text_problem(value) is None


def _bad_url_bytes(raw: bytes) -> bool:
    decoded = unquote_to_bytes(raw) if b"%" in raw else raw
    if b"\x00" in decoded:
        return True
    if decoded.isascii():
        return False
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def check_url_text(scope: Scope) -> None:
    """Refuse a path or query string holding NUL or percent-encoded non-UTF-8 bytes.

    Raises:
        ValidationFailed: naming the part of the URL, never echoing it.
    """
    query: bytes = scope.get("query_string") or b""
    if query and _bad_url_bytes(query):
        raise ValidationFailed(
            "query: a parameter holds a NUL character or bytes that are not UTF-8."
        )
    raw_path: bytes | None = scope.get("raw_path")
    if raw_path is not None:
        # Some servers (and httpx's ASGI transport) include the query here.
        bad_path = _bad_url_bytes(raw_path.partition(b"?")[0])
    else:
        bad_path = text_problem(scope.get("path", "")) is not None
    if bad_path or _NUL in scope.get("path", ""):
        raise ValidationFailed("path: it holds a NUL character or bytes that are not UTF-8.")


def _holds_unstorable_string(document: Any) -> bool:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not is_unicode(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_json_text(body: bytes) -> None:
    """Refuse a JSON body whose strings hold a lone UTF-16 surrogate.

    Bodies that are not JSON are left to the parser that reports them.

    Raises:
        ValidationFailed: a string of the body is not Unicode.
    """
    escaped = b"\\u" in body and _LONE_SURROGATE_ESCAPE.search(body) is not None
    raw = b"\xed" in body and _RAW_SURROGATE.search(body) is not None
    if not (escaped or raw):
        return
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return
    if _holds_unstorable_string(document):
        raise ValidationFailed(
            "body: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair)."
        )


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type")
    if not content_type:
        # FastAPI parses a body without a content type as JSON.
        return True
    media_type = content_type.partition(";")[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and sub.endswith(_JSON_MEDIA_SUFFIX)


async def check_request_text(request: Request, *, json_body: bool) -> None:
    """Refuse text no endpoint can handle in the URL and (if ``json_body``) the JSON body.

    Raises:
        ValidationFailed: NUL or non-Unicode text where it cannot be accepted.
    """
    check_url_text(request.scope)
    if json_body and _is_json(request):
        check_json_text(await request.body())
