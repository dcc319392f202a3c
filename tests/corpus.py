"""The hostile payloads the endpoint tests fire: one corpus, shared by every service.

Add a payload here when an attack finds something new; every test that iterates
a list below then fires it at its endpoints.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = [
    "FORGED_CURSORS",
    "HOSTILE_BODY_TEXT",
    "HOSTILE_URL_VALUES",
    "LONE_SURROGATE",
    "LONE_SURROGATE_URL",
    "NUL",
    "SQL_INJECTIONS",
    "SQL_TAUTOLOGY",
    "forged_cursor",
    "json_bytes",
]

# --- SQL: every one must reach the database as a plain value -------------------

SQL_TAUTOLOGY = "' OR '1'='1"
SQL_INJECTIONS = [
    SQL_TAUTOLOGY,
    "'; DROP TABLE aso_keywords; --",
    "1; DROP TABLE aso_content;--",
    "x'; DROP TABLE intake_submissions; --",
    '" OR ""="',
    '" OR 1=1 --',
    "%' OR source LIKE '%",
    "\\'; SELECT 1; --",
    # LIKE wildcards: a prefix or substring filter must match them literally.
    "%",
    "_",
]

# --- text no database or driver can take ----------------------------------------

NUL = "\x00"
# A high surrogate without its pair: JSON can spell it ("\ud800"), UTF-8 cannot.
LONE_SURROGATE = "\ud800"
# The same code point as (invalid) UTF-8 bytes, percent-encoded in a URL.
LONE_SURROGATE_URL = "%ED%A0%80"
# Values for a JSON body's strings (send with json_bytes: httpx cannot encode a
# lone surrogate).
HOSTILE_BODY_TEXT = {
    "nul": NUL,
    "nul_inside": "a" + NUL + "b",
    "lone_high_surrogate": LONE_SURROGATE,
    "lone_low_surrogate": "a\udc00b",
}
# Raw, already percent-encoded query or path values.
HOSTILE_URL_VALUES = {
    "nul": "%00",
    "nul_inside": "a%00b",
    "lone_surrogate": LONE_SURROGATE_URL,
    "not_utf8": "%FF%FE",
}


def json_bytes(document: Any) -> bytes:
    """``document`` as JSON with every non-ASCII character escaped, lone surrogates too."""
    return json.dumps(document, ensure_ascii=True).encode("ascii")


# --- cursors: opaque to clients, so anything may come back ----------------------

_TIME = "2026-01-01T00:00:00+00:00"
_ID = "0" * 32


def forged_cursor(value: Any) -> str:
    """A cursor in the API's encoding (unpadded urlsafe base64 of JSON) holding ``value``."""
    return base64.urlsafe_b64encode(json_bytes(value)).decode().rstrip("=")


def _raw_cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = {
    # Integers past what a BIGINT (or an INTEGER column) can hold.
    "int64_overflow": forged_cursor([2**63, _TIME, _ID]),
    "int64_underflow": forged_cursor([-(2**63) - 1, _TIME, _ID]),
    "int32_overflow": forged_cursor([2**31, _TIME, _ID]),
    "huge_int": forged_cursor([10**30, _TIME, _ID]),
    "huge_int_as_id": forged_cursor([_TIME, 2**63]),
    # Text no database can store.
    "surrogate_id": forged_cursor([_TIME, LONE_SURROGATE]),
    "nul_id": forged_cursor([_TIME, "a" + NUL]),
    "surrogate_id_3": forged_cursor([1, _TIME, LONE_SURROGATE]),
    "nul_id_3": forged_cursor([1, _TIME, NUL]),
    "surrogate_time": forged_cursor([LONE_SURROGATE, _ID]),
    "nul_time": forged_cursor([_TIME + NUL, _ID]),
    # Wrong shapes and types.
    "nested_lists": forged_cursor([[1], [2]]),
    "nested_lists_3": forged_cursor([[1], [2], [3]]),
    "deeply_nested": forged_cursor(json.loads("[" * 60 + "]" * 60)),
    "object": forged_cursor({"created_at": _TIME, "id": _ID}),
    "null": forged_cursor(None),
    "bools": forged_cursor([True, _TIME, _ID]),
    "numbers": forged_cursor([1.5, 2.5]),
    "too_short": forged_cursor([_TIME]),
    "too_long": forged_cursor([1, _TIME, _ID, "extra"]),
    "naive_time": forged_cursor(["2026-01-01T00:00:00", _ID]),
    "time_out_of_range": forged_cursor(["9999-12-31T23:59:59-14:00", _ID]),
    # Not a cursor at all.
    "not_utf8": _raw_cursor(b'["\xff\xfe"]'),
    "not_json": _raw_cursor(b"not json"),
    "not_base64": "!!!not-base64!!!",
}
