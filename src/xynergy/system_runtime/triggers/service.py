"""Service triggers: one allow-listed catalogue operation, called as the caller.

A trigger is answered synchronously, through ``engine.calls.call_operation``: the
same call a workflow step makes (key check, internal token with the operation's
scopes, breaker, retries with jitter for retryable failures only, and an
idempotency key on writes). It is not a one-step durable run because its caller
waits for the operation's answer, and the guarantee a durable run would add is
already held by the callee: every write carries an idempotency key derived from
the caller's ``Idempotency-Key`` (the platform layer also replays our answer), so
a trigger retried after a crash or a lost answer does not act twice. Work that
must outlive the request is a definition started with ``/api/workflows/start``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import new_id
from xynergy.platform.exceptions import (
    BadRequest,
    BudgetExceeded,
    Conflict,
    Forbidden,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
    XynergyError,
)
from xynergy.system_runtime.catalogue import Operation, OperationInputError
from xynergy.system_runtime.engine.calls import Identity, StepFailed, call_operation
from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.triggers.schemas import TriggerRequest, TriggerResult

__all__ = ["TriggerFailed", "find_operation", "trigger"]


class TriggerFailed(XynergyError):
    """The operation failed in a way that is not the caller's to fix (or to retry)."""

    status_code = 502
    code = "trigger_failed"
    default_detail = "The service answered the trigger with a failure."


# A callee's 4xx is the caller's problem: answered as the same error, not as a 502.
_CALLER_ERRORS: dict[str, type[XynergyError]] = {
    cls.code: cls for cls in (BadRequest, ValidationFailed, Forbidden, NotFound, Conflict)
} | {BudgetExceeded.code: BudgetExceeded, "key_unusable": Forbidden}
_TIMEOUTS = frozenset({"step_timeout", UpstreamTimeout.code})


def find_operation(context: RuntimeContext, service: str, name: str) -> Operation:
    """The catalogue operation ``name`` of ``service``.

    Raises:
        NotFound: no catalogue operation belongs to ``service``.
        ValidationFailed: ``name`` is not one of ``service``'s operations.
    """
    offered = sorted(op.name for op in context.catalogue if op.service == service)
    if not offered:
        raise NotFound(f"No service {service!r} offers operations to trigger.")
    operation = context.catalogue.get(name)
    if operation is None or operation.service != service:
        raise ValidationFailed(f"operation: {service} offers {offered}, not {name!r}.")
    return operation


def _callee_key(caller: AuthContext, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        # Still one key for every attempt of this call: our own retries stay single.
        return f"xynergy-trigger-{new_id()}"
    digest = hashlib.sha256(f"{caller.key_id}\0{idempotency_key}".encode()).hexdigest()[:40]
    return f"xynergy-trigger-{digest}"


def _as_error(failure: StepFailed) -> XynergyError:
    if failure.code in _TIMEOUTS:
        return UpstreamTimeout(failure.message)
    if failure.code == "circuit_open" or failure.code == UpstreamUnavailable.code:
        return UpstreamUnavailable(failure.message)
    caller_error = _CALLER_ERRORS.get(failure.code)
    if caller_error is not None:
        return caller_error(failure.message)
    return TriggerFailed(f"{failure.code}: {failure.message}")


async def trigger(
    context: RuntimeContext,
    *,
    caller: AuthContext,
    service: str,
    body: TriggerRequest,
    idempotency_key: str | None,
) -> TriggerResult:
    """Call one operation of ``service`` as ``caller`` and answer its result.

    Everything is checked before the call: the operation belongs to the service,
    the caller holds its scopes, the input is bounded and forms a valid request.
    """
    operation = find_operation(context, service, body.operation)
    if not caller.allows(*operation.scopes):
        missing = ", ".join(sorted(operation.scopes - caller.scopes))
        raise Forbidden(f"{operation.name} needs scope(s) this key lacks: {missing}.")
    size = len(json.dumps(body.input, separators=(",", ":")))
    if size > context.settings.input_max_bytes:
        raise ValidationFailed(f"input: {size} bytes, at most {context.settings.input_max_bytes}.")
    try:
        operation.request_parts(body.input)
    except OperationInputError as exc:
        raise ValidationFailed(str(exc)) from None
    identity = Identity(
        tenant_id=caller.tenant_id,
        key_id=caller.key_id,
        key_tenant_id=caller.key_tenant_id,
        scopes=caller.scopes,
    )
    try:
        output: Any = await call_operation(
            context,
            operation=operation,
            payload=body.input,
            identity=identity,
            idempotency_key=_callee_key(caller, idempotency_key),
            timeout_seconds=context.settings.trigger_timeout_seconds,
            max_attempts=context.settings.trigger_attempts,
        )
    except StepFailed as failure:
        raise _as_error(failure) from None
    return TriggerResult(operation=operation.name, service=operation.service, output=output)
