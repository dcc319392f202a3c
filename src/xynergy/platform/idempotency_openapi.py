"""How an operation that honours Idempotency-Key says so in its OpenAPI document.

Its errors come from ``xynergy.platform.openapi_errors`` like every other; this
adds the optional request header and the header that marks a replayed answer.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from xynergy.platform.idempotency import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    REPLAYED_HEADER,
)
from xynergy.platform.idempotency_models import IDEMPOTENCY_KEY_MAX_CHARS

__all__ = ["declare_idempotency"]

_PARAMETER = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a retry of this write safe: a repeat with the same key and request "
    "answers the first response again (with `Idempotent-Replayed: true`) without running it "
    "twice. Keys are per tenant and kept for `idempotency_ttl_seconds`; the same key with "
    "another request is refused (422 `idempotency_key_reused`), a repeat while the first "
    "runs answers 409 `idempotency_in_progress`.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}
_REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key (the write did not run again).",
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}
_FIRST_ERROR_STATUS = 400


def declare_idempotency(operation: dict[str, Any]) -> None:
    """Add the ``Idempotency-Key`` parameter and, on stored answers, the replay header."""
    parameters = operation.setdefault("parameters", [])
    if not any(parameter.get("name") == IDEMPOTENCY_KEY_HEADER for parameter in parameters):
        parameters.append(deepcopy(_PARAMETER))
    for status, response in operation.get("responses", {}).items():
        if status.isdigit() and int(status) < _FIRST_ERROR_STATUS:
            response.setdefault("headers", {})[REPLAYED_HEADER] = deepcopy(_REPLAYED)
