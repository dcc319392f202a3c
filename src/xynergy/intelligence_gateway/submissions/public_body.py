"""Reading a public submission's body: JSON only, bounded while streamed, validated once."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import ValidationError

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.submissions.public_schemas import PublicSubmission
from xynergy.platform.errors import describe_validation_errors
from xynergy.platform.exceptions import (
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

__all__ = ["MalformedJson", "parsed", "read_json_body"]

SubmissionT = TypeVar("SubmissionT", bound=PublicSubmission)

_JSON = "application/json"
_UTF8 = frozenset({"utf-8", "utf8"})


class MalformedJson(BadRequest):
    code = "malformed_json"
    default_detail = "The request body is not valid JSON."


async def read_json_body(request: Request, limit: int) -> bytes:
    media_type, *params = request.headers.get("content-type", "").split(";")
    charsets = {
        p.split("=", 1)[1].strip().strip('"').lower() for p in params if "charset=" in p.lower()
    }
    if media_type.strip().lower() != _JSON or not charsets <= _UTF8:
        raise UnsupportedMediaType("The body must be application/json (UTF-8).")
    too_large = PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parsed(schema: type[SubmissionT], raw: bytes, bounds: IntakeSettings) -> SubmissionT:
    try:
        return schema.model_validate_json(raw, context={"bounds": bounds})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        status, _, detail = describe_validation_errors(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        )
        # Platform errors (not FastAPI's), so the form's CORS headers go on them too.
        raise (MalformedJson() if status == 400 else ValidationFailed(detail)) from None
