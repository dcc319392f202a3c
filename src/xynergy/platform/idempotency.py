"""Idempotency-Key on authenticated writes, by construction.

Every authenticated POST/PUT/PATCH/DELETE :class:`SecureRoute` honours an
``Idempotency-Key`` header (Stripe's semantics, and the IETF draft "The
Idempotency-Key HTTP Header Field"), unless its endpoint opts out with
``xynergy.platform.routing.idempotency_exempt(reason)``. Per acting tenant and key:

* the first request inserts a *pending* record (the unique constraint on
  (tenant, key) decides a race), runs, and stores its status, body and
  ``Content-Type``/``Location``; a repeat of the same request then answers that
  response again, with ``Idempotent-Replayed: true``, and does not run;
* a repeat while the first still runs: 409 ``idempotency_in_progress`` with
  ``Retry-After``; a first run older than ``idempotency_pending_timeout_seconds``
  is taken to have crashed and the repeat runs instead;
* the same key with another request (method, route, path and query, content
  type, body): 422 ``idempotency_key_reused``;
* an outcome the client should retry is not stored: an error raised by the
  endpoint (its unit of work rolled back, nothing was written), any 5xx, and
  401/403/408/409/425/429. The record is released and the retry runs;
* a body larger than ``idempotency_max_response_bytes`` is not stored, but the
  write is remembered: a repeat gets 409 ``idempotency_response_not_stored``
  rather than writing twice. A streamed response (no body to store) releases;
* records expire ``idempotency_ttl_seconds`` after creation (purged in bounded
  batches by ``idempotency_purge``; an expired one is also ignored on sight).

The fingerprint does not include the key that called: a tenant is the scope of
a key (as at Stripe), and a workflow step retried after its caller's key was
rotated must still find its record. Upload routes (bulk imports) stream their
body: it is hashed as the endpoint reads it, never held.

One window stays: the request's own unit of work commits before its response is
stored here, so a process that dies between the two leaves a pending record that
is run again after the pending timeout.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from xynergy.platform.config import Settings
from xynergy.platform.exceptions import BadRequest, Conflict, XynergyError
from xynergy.platform.idempotency_models import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    IdempotencyRecord,
    RecordState,
)
from xynergy.platform.idempotency_store import Claim, IdempotencyStore

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENCY_KEY_PATTERN",
    "REPLAYED_HEADER",
    "WRITE_METHODS",
    "IdempotencyInProgress",
    "IdempotencyKeyInvalid",
    "IdempotencyKeyReused",
    "IdempotencyResponseNotStored",
    "idempotency_key_of",
    "run_idempotently",
]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Visible ASCII, as the intake's own keys: no spaces or controls to smuggle into logs.
IDEMPOTENCY_KEY_PATTERN = f"^[\\x21-\\x7e]{{1,{IDEMPOTENCY_KEY_MAX_CHARS}}}$"
_KEY_SYNTAX = re.compile(IDEMPOTENCY_KEY_PATTERN.strip("^$"))
_HEADER_NAME = IDEMPOTENCY_KEY_HEADER.lower().encode()
# FastAPI's exit stack of the endpoint's function-scoped dependencies (the session).
_FUNCTION_STACK = "fastapi_function_astack"


class IdempotencyKeyInvalid(BadRequest):
    code = "idempotency_key_invalid"
    default_detail = (
        f"{IDEMPOTENCY_KEY_HEADER} must be one header of 1 to {IDEMPOTENCY_KEY_MAX_CHARS} "
        "visible ASCII characters."
    )


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    default_detail = (
        f"A request with this {IDEMPOTENCY_KEY_HEADER} is still running; retry after "
        "Retry-After to get its response."
    )


class IdempotencyKeyReused(XynergyError):
    status_code = 422
    code = "idempotency_key_reused"
    default_detail = (
        f"This {IDEMPOTENCY_KEY_HEADER} was used for a different request; use a new key."
    )


class IdempotencyResponseNotStored(Conflict):
    code = "idempotency_response_not_stored"
    default_detail = (
        f"The request with this {IDEMPOTENCY_KEY_HEADER} completed, but its response was "
        "too large to keep; it is not run again."
    )


def idempotency_key_of(scope: Scope) -> str | None:
    """The request's ``Idempotency-Key``, None without one; 400 if malformed."""
    values = [value for name, value in scope["headers"] if name == _HEADER_NAME]
    if not values:
        return None
    key = values[0].decode("latin-1")
    if len(values) > 1 or not _KEY_SYNTAX.fullmatch(key):
        raise IdempotencyKeyInvalid()
    return key


Answer = Callable[[Request], Awaitable[Response]]


async def run_idempotently(
    request: Request, *, tenant_id: str, key: str, streamed_body: bool, answer: Answer
) -> Response:
    """Answer ``request`` under ``key`` in ``tenant_id``: replay, refuse, or run ``answer``.

    Args:
        request: The authenticated write request.
        tenant_id: The acting tenant: the scope of the key.
        key: The request's (valid) Idempotency-Key.
        streamed_body: The endpoint streams the body itself (an upload): hash it as
            it is read instead of reading it first.
        answer: What answers the request when it runs (the route's handler).
    """
    platform = request.app.state.platform
    store = IdempotencyStore(
        platform.sessionmaker,
        platform.settings,
        tenant_id=tenant_id,
        key=key,
        retries=platform.idempotency_retries,
    )
    head = _head_digest(request)
    fingerprint = None if streamed_body else _fingerprint(head, await request.body())
    claim = await store.claim(fingerprint)
    if claim is None:
        raise _in_progress(platform.settings)
    if isinstance(claim, IdempotencyRecord):
        return await _repeat(request, claim, head, fingerprint, platform.settings)
    settled = _Settlement(store, claim, fingerprint)
    stack: AsyncExitStack | None = request.scope.get(_FUNCTION_STACK)
    if stack is None:  # not under FastAPI's request_response: settle here
        async with AsyncExitStack() as own_stack:
            own_stack.push_async_exit(settled)
            return await _run(request, settled, head, streamed_body, answer)
    # Settled when FastAPI closes the endpoint's dependencies, after the request's
    # unit of work committed (its exit was pushed later, so it runs first): a record
    # never says "done" for a write whose commit then failed.
    stack.push_async_exit(settled)
    return await _run(request, settled, head, streamed_body, answer)


async def _run(
    request: Request, settled: _Settlement, head: bytes, streamed_body: bool, answer: Answer
) -> Response:
    if not streamed_body:
        settled.response = await answer(request)
        return settled.response
    hashing = _HashingReceive(request.receive)
    response = await answer(Request(request.scope, receive=hashing))
    settled.fingerprint = _combine(head, await hashing.digest_to_end())
    settled.response = response
    return response


async def _repeat(
    request: Request,
    record: IdempotencyRecord,
    head: bytes,
    fingerprint: str | None,
    settings: Settings,
) -> Response:
    if record.state != RecordState.DONE:
        if fingerprint is not None and record.fingerprint not in (None, fingerprint):
            raise IdempotencyKeyReused()
        raise _in_progress(settings)
    if fingerprint is None:
        # A streamed upload: hash what is sent, without keeping it, to compare.
        fingerprint = _combine(head, await _HashingReceive(request.receive).digest_to_end())
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.response_body is None or record.status_code is None:
        raise IdempotencyResponseNotStored()
    headers = {**(record.response_headers or {}), REPLAYED_HEADER: "true"}
    return Response(record.response_body, status_code=record.status_code, headers=headers)


def _in_progress(settings: Settings) -> IdempotencyInProgress:
    retry_after = settings.idempotency_in_progress_retry_after_seconds
    return IdempotencyInProgress(headers={"Retry-After": str(retry_after)})


def _head_digest(request: Request) -> bytes:
    """What identifies the request apart from its body, canonically encoded."""
    route = request.scope.get("route")
    query = sorted(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), True))
    head = [
        request.method,
        request.app.state.service_slug,
        getattr(route, "path_format", request.url.path),
        sorted(request.path_params.items()),
        query,
        request.headers.get("content-type", ""),
    ]
    return json.dumps(head, separators=(",", ":")).encode()


def _fingerprint(head: bytes, body: bytes) -> str:
    return _combine(head, hashlib.sha256(body).hexdigest())


def _combine(head: bytes, body_digest: str) -> str:
    return hashlib.sha256(head + b"\n" + body_digest.encode()).hexdigest()


class _HashingReceive:
    """An ASGI receive that hashes the body passing through it, keeping none of it."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._sha256 = hashlib.sha256()
        self._complete = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._sha256.update(message.get("body", b""))
            self._complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self._complete = True
        return message

    async def digest_to_end(self) -> str:
        """The body's sha256, reading what the endpoint left unread (bounded by the
        body-size limit) so that a partial read fingerprints the same request."""
        while not self._complete:
            await self()
        return self._sha256.hexdigest()


class _Settlement:
    """An async exit callback: store the run's answer, or release its claim."""

    def __init__(self, store: IdempotencyStore, claim: Claim, fingerprint: str | None) -> None:
        self._store = store
        self._claim = claim
        # None for a streamed body until it has been read through.
        self.fingerprint = fingerprint
        self.response: Response | None = None

    async def __call__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is not None or self.response is None:
            # The endpoint or its commit failed: nothing was written, run it again.
            await self._store.release(self._claim)
        else:
            await self._store.finish(self._claim, self.fingerprint, self.response)
        return False
