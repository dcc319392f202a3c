"""One operation step: check the acting key, call the service, retry what may pass later.

Retries live here rather than in DBOS's step options because the issue's policy
needs what those options lack: full jitter, and a ``Retry-After`` the callee
sent. The whole call, retries included, is one DBOS step, so a completed call is
never repeated; a call cut short by a crash is repeated with the same
idempotency key, which the callee answers from its record.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.services import ServiceResponse
from xynergy.system_runtime.catalogue import Operation, OperationInputError
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.engine.context import RuntimeContext

__all__ = ["Identity", "StepFailed", "call_operation", "idempotency_key_for"]

_FIRST_ERROR = 400
_FIRST_SERVER_ERROR = 500
_TOO_MANY = 429
_CONFLICT = 409
# Codes of a 409 that means "the same call is still in flight": worth waiting for.
_IN_FLIGHT_CODES = frozenset({"idempotency_in_progress"})


class StepFailed(Exception):  # noqa: N818 - the step's outcome, not a programming error
    """A step ended without success; ``code`` and ``message`` are shown to the tenant.

    Plain picklable arguments only: DBOS records the exception as the step's result.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a run acts as: the key that started it, with the scopes it had then."""

    tenant_id: str
    key_id: str
    key_tenant_id: str
    scopes: frozenset[str]

    def context(self) -> AuthContext:
        return AuthContext(
            tenant_id=self.tenant_id,
            key_id=self.key_id,
            key_tenant_id=self.key_tenant_id,
            scopes=self.scopes,
        )


def idempotency_key_for(run_id: str, step_id: str) -> str:
    """The same for every attempt and every re-execution of one step of one run."""
    return f"xynergy-run-{run_id}-{step_id}"


async def _ensure_key_usable(context: RuntimeContext, identity: Identity) -> None:
    # As strict as a request's authentication, through the same revocable cache.
    reason = await context.platform.key_verifier.unusable_reason(identity.key_id)
    if reason is not None:
        raise StepFailed(
            "key_unusable",
            f"The API key that started this run is {reason}; the run stopped here "
            "instead of acting on a dead credential.",
        )


def _retry_after(response: ServiceResponse) -> float | None:
    value = response.retry_after_headers().get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error_of(response: ServiceResponse) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error") or "error"), str(body.get("detail") or "")[:1000]
    except (ValueError, AttributeError):
        return "error", f"status {response.status}"


def _is_retryable(response: ServiceResponse) -> bool:
    if response.status >= _FIRST_SERVER_ERROR:
        return True
    if response.status == _TOO_MANY:
        return _retry_after(response) is not None
    return response.status == _CONFLICT and _error_of(response)[0] in _IN_FLIGHT_CODES


def _backoff(settings: RuntimeSettings, attempt: int, retry_after: float | None) -> float:
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempt - 1))
    # Full jitter (AWS architecture blog): many runs retrying one upstream spread out.
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_max_seconds))
    return delay


def _bounded_output(settings: RuntimeSettings, response: ServiceResponse) -> Any:
    if not response.content:
        return None
    if len(response.content) > settings.step_output_max_bytes:
        raise StepFailed(
            "output_too_large",
            f"The answer was {len(response.content)} bytes; a step records at most "
            f"{settings.step_output_max_bytes}.",
        )
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        raise StepFailed("output_not_json", "The service did not answer JSON.") from None


async def call_operation(
    context: RuntimeContext,
    *,
    operation: Operation,
    payload: dict[str, Any],
    identity: Identity,
    idempotency_key: str,
    timeout_seconds: float,
    max_attempts: int,
    on_attempt: Any = None,
) -> Any:
    """The operation's JSON answer, after retries of retryable failures.

    Raises:
        StepFailed: a permanent failure (4xx, dead key, bad input) or the last
            retryable one.
    """
    try:
        call = operation.request_parts(payload)
    except OperationInputError as exc:
        raise StepFailed("invalid_step_input", str(exc)) from None
    settings = context.settings
    attempt = 0
    while True:
        attempt += 1
        if on_attempt is not None:
            await on_attempt(attempt)
        # Checked before every attempt: a revoked key stops the run at its next call.
        await _ensure_key_usable(context, identity)
        retry_after: float | None = None
        try:
            async with asyncio.timeout(timeout_seconds):
                response = await context.platform.services.request(
                    operation.service,
                    operation.method,
                    call.path,
                    caller=identity.context(),
                    scopes=operation.scopes,
                    json=call.json,
                    params=call.params,
                    content=call.content,
                    content_type=call.content_type,
                    idempotency_key=idempotency_key if operation.writes else None,
                )
        except (TimeoutError, UpstreamTimeout):
            failure = ("step_timeout", f"{operation.name} did not answer in {timeout_seconds} s.")
        except UpstreamUnavailable as exc:
            failure = (exc.code, exc.detail)
        else:
            if response.status < _FIRST_ERROR:
                return _bounded_output(settings, response)
            code, detail = _error_of(response)
            failure = (code, f"{operation.name} answered {response.status}: {detail}")
            if not _is_retryable(response):
                raise StepFailed(*failure)
            retry_after = _retry_after(response)
        if attempt >= max_attempts:
            raise StepFailed(*failure)
        await asyncio.sleep(_backoff(settings, attempt, retry_after))
