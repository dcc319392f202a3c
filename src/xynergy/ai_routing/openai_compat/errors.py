"""OpenAI's error shape, for the OpenAI-compatible endpoints under ``/v1``.

The official SDKs read ``error.message``, ``error.type``, ``error.param`` and
``error.code`` from ``{"error": {...}}``; in the platform's shape they find none of
them and show only ``Error code: 403``.

``type`` takes the values OpenAI's own API answers, by status: it answers
``invalid_request_error`` for every refusal of the request itself, a bad key
(401 ``invalid_api_key``), missing permissions and an unknown model (404
``model_not_found``) included; ``rate_limit_error`` for throttling,
``insufficient_quota`` for spend limits, ``service_unavailable_error`` when it
cannot serve now, ``server_error`` otherwise. The SDKs pick their exception class
by status, so ``type`` only matters to code written against OpenAI's values.

``code`` is the platform's own code (``unauthorized``, ``forbidden``,
``validation_failed``, ``circuit_open``...), the same word the other services and
the docs use, rather than OpenAI's codes, which name OpenAI's situations.
"""

from __future__ import annotations

import json
from typing import Any

from xynergy.platform.error_shapes import ErrorShape

__all__ = ["OPENAI_ERRORS", "openai_error", "openai_error_type"]

_REQUEST_REFUSED = "invalid_request_error"
_SERVER_FAILED = "server_error"
_TYPE_BY_STATUS = {
    402: "insufficient_quota",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}
_SERVER_ERRORS_FROM = 500


def openai_error_type(status: int) -> str:
    """OpenAI's ``error.type`` for an answer with ``status``."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return _SERVER_FAILED if status >= _SERVER_ERRORS_FROM else _REQUEST_REFUSED


def openai_error(status: int, code: str, detail: str, request_id: str | None) -> dict[str, Any]:
    """The error body; the request id is in the message too, as OpenAI's are, because
    that is what users copy into a bug report (``X-Request-ID`` carries it as well)."""
    message = f"{detail} (request id: {request_id})" if request_id else detail
    return {
        "error": {
            "message": message,
            "type": openai_error_type(status),
            "param": None,
            "code": code,
        }
    }


def _render(status: int, code: str, detail: str, request_id: str | None) -> bytes:
    return json.dumps(
        openai_error(status, code, detail, request_id), separators=(",", ":")
    ).encode()


OPENAI_ERRORS = ErrorShape(
    name="OpenAIError",
    render=_render,
    schema={
        "type": "object",
        "title": "OpenAIError",
        "description": "OpenAI's error shape; the request id is also in `X-Request-ID`.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {
                        "type": "string",
                        "description": "What went wrong, for a person, ending with the request id.",
                    },
                    "type": {
                        "type": "string",
                        "enum": sorted(
                            {_REQUEST_REFUSED, _SERVER_FAILED, *_TYPE_BY_STATUS.values()}
                        ),
                        "description": "OpenAI's error category for the status.",
                    },
                    "param": {
                        "type": ["string", "null"],
                        "description": "The request parameter at fault; always null here.",
                    },
                    "code": {
                        "type": "string",
                        "description": "The platform's stable code, e.g. `validation_failed`.",
                    },
                },
            }
        },
    },
)
