"""Public intake: beta applications, contact messages, and the form tokens they carry.

The routes are public through the platform's one marker, so SecureRoute counts
every request per client IP ("public" class) before anything else runs; the
intake adds its own limits per client IP (per form kind) and per form.

A form is named by ``?form=<public_id>`` rather than in the body, so that a CORS
preflight, which has no body, can find the form and its allowed origins. CORS is
answered here, per form: an origin the form lists gets
``Access-Control-Allow-Origin`` (that exact origin), any other gets none.

Every accepted submission is answered with the same 202 and the same bytes —
new, a second application with a known e-mail, a retry with a used idempotency
key, or spam — so the answer reveals nothing about what was stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from fastapi import Header, Path, Query, Request, Response
from limits import parse
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import FormTokens, derive_key
from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.intelligence_gateway.submissions import intake_service
from xynergy.intelligence_gateway.submissions.form_cors import cors_headers, preflight
from xynergy.intelligence_gateway.submissions.public_body import parsed, read_json_body
from xynergy.intelligence_gateway.submissions.public_repository import (
    PublicSubmissionRepository,
)
from xynergy.intelligence_gateway.submissions.public_schemas import (
    BetaApplicationCreate,
    ContactMessageCreate,
    FormTokenIssued,
    PublicSubmission,
    SubmissionReceived,
    max_body_bytes,
)
from xynergy.platform.client_ip import client_ip
from xynergy.platform.db.session import SessionDep, on_commit
from xynergy.platform.exceptions import (
    Forbidden,
    NotFound,
    RateLimited,
    UnsupportedMediaType,
    ValidationFailed,
    XynergyError,
)
from xynergy.platform.routing import api_router, handles_own_cors, public, raises

__all__ = ["router"]

router = api_router(prefix="/api", tags=["intake"])

SubmissionT = TypeVar("SubmissionT", bound=PublicSubmission)

PUBLIC_ID_MAX_CHARS = 40  # intake_forms.public_id
IDEMPOTENCY_KEY_HARD_MAX = 1000  # intake_submissions.idempotency_key
_RECEIVED = SubmissionReceived().model_dump_json().encode()
_JSON = "application/json"
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_IP_HASH_LABEL = b"xynergy.intake.client-ip.v1"

FormId = Annotated[
    str,
    Query(alias="form", min_length=1, max_length=PUBLIC_ID_MAX_CHARS, description="Public id."),
]
PublicId = Annotated[str, Path(min_length=1, max_length=PUBLIC_ID_MAX_CHARS)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_HARD_MAX,
        description="A retry with the same key to the same form creates nothing new.",
    ),
]


def _body_schema(model: type[PublicSubmission]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": schema}}}}


def _intake(request: Request) -> IntakeSettings:
    bounds: IntakeSettings = request.app.state.intake
    return bounds


def _tokens(request: Request) -> FormTokens:
    platform = request.app.state.platform
    return FormTokens.from_settings(
        _intake(request),
        platform.internal_tokens.secrets,
        leeway_seconds=platform.settings.internal_token_leeway_seconds,
    )


async def _active_form(session: AsyncSession, public_id: str, kind: str | None) -> IntakeForm:
    form = await PublicSubmissionRepository(session).active_form(public_id)
    if form is None or (kind is not None and form.kind != kind):
        raise NotFound("No such form.")
    return form


async def _count_against_limits(request: Request, form: IntakeForm, address: str) -> None:
    bounds = _intake(request)
    limiter = request.app.state.platform.rate_limiter
    service = request.app.state.service_slug
    # Per address first: one noisy client is stopped before it eats the form's budget.
    await limiter.consume(
        parse(bounds.rate_per_ip), f"intake_{form.kind}_ip", "ip:" + address, service=service
    )
    await limiter.consume(
        parse(bounds.rate_per_form), "intake_form", "form:" + form.id, service=service
    )


def _checked_idempotency_key(value: str | None, bounds: IntakeSettings) -> str | None:
    if value is None:
        return None
    if len(value) > bounds.idempotency_key_max_chars or not _VISIBLE_ASCII.fullmatch(value):
        raise ValidationFailed(
            f"header.Idempotency-Key: 1 to {bounds.idempotency_key_max_chars} "
            "visible ASCII characters."
        )
    return value


async def _submit(
    request: Request,
    session: AsyncSession,
    public_id: str,
    idempotency_key: str | None,
    schema: type[PublicSubmission],
    *,
    kind: str,
) -> Response:
    bounds = _intake(request)
    platform = request.app.state.platform
    form = await _active_form(session, public_id, kind)
    cors = cors_headers(form, request)
    try:
        address = client_ip(request.scope, platform.settings.trusted_proxies)
        await _count_against_limits(request, form, address)
        key = _checked_idempotency_key(idempotency_key, bounds)
        limit = min(max_body_bytes(bounds), platform.settings.max_body_bytes)
        data = parsed(schema, await read_json_body(request, limit), bounds)
        await intake_service.submit(
            session,
            form=form,
            data=data,
            arrival=intake_service.Arrival(address, request.headers.get("origin"), key),
            bounds=bounds,
            tokens=_tokens(request),
            ip_key=derive_key(platform.internal_tokens.secrets[0], _IP_HASH_LABEL),
        )
        if form.webhook_url:
            # Whatever was stored: a wake-up that finds nothing costs one claim, and
            # waking only for new submissions would make them the slower answers.
            dispatcher = request.app.state.outbox

            async def deliver_soon() -> None:
                dispatcher.notify()  # polling still delivers if this process stops first

            on_commit(session, deliver_soon)
    except XynergyError as exc:
        # The page that posted may read the error (and Retry-After) only with these.
        exc.headers.update(cors)
        raise
    return Response(_RECEIVED, status_code=202, media_type=_JSON, headers=cors)


@router.post(
    "/beta-applications",
    status_code=202,
    response_model=SubmissionReceived,
    openapi_extra=_body_schema(BetaApplicationCreate),
)
@public
@raises(NotFound, Forbidden, UnsupportedMediaType, RateLimited)
@handles_own_cors
async def submit_beta_application(
    request: Request, session: SessionDep, form: FormId, idempotency_key: IdempotencyKey = None
) -> Response:
    """Apply for the beta through a form; the answer is the same whether or not the e-mail applied before."""
    return await _submit(
        request, session, form, idempotency_key, BetaApplicationCreate, kind="beta"
    )


@router.post(
    "/contact",
    status_code=202,
    response_model=SubmissionReceived,
    openapi_extra=_body_schema(ContactMessageCreate),
)
@public
@raises(NotFound, Forbidden, UnsupportedMediaType, RateLimited)
@handles_own_cors
async def submit_contact_message(
    request: Request, session: SessionDep, form: FormId, idempotency_key: IdempotencyKey = None
) -> Response:
    """Send a message through a contact form."""
    return await _submit(
        request, session, form, idempotency_key, ContactMessageCreate, kind="contact"
    )


@router.get(
    "/forms/{public_id}/token",
    response_model=FormTokenIssued,
)
@public
@raises(Forbidden)
@handles_own_cors
async def issue_form_token(request: Request, session: SessionDep, public_id: PublicId) -> Response:
    """A signed token for the page to send back with its submission."""
    form = await _active_form(session, public_id, kind=None)
    issued = FormTokenIssued(
        token=_tokens(request).issue(form.public_id),
        min_fill_seconds=_intake(request).form_token_min_fill_seconds,
    )
    return Response(
        issued.model_dump_json().encode(), media_type=_JSON, headers=cors_headers(form, request)
    )


@router.options("/beta-applications", include_in_schema=False)
@public
@handles_own_cors
async def beta_application_preflight(
    request: Request, session: SessionDep, form: FormId
) -> Response:
    """CORS preflight of a beta application."""
    return preflight(request, await _active_form(session, form, "beta"), method="POST")


@router.options("/contact", include_in_schema=False)
@public
@handles_own_cors
async def contact_message_preflight(
    request: Request, session: SessionDep, form: FormId
) -> Response:
    """CORS preflight of a contact message."""
    return preflight(request, await _active_form(session, form, "contact"), method="POST")


@router.options("/forms/{public_id}/token", include_in_schema=False)
@public
@handles_own_cors
async def form_token_preflight(
    request: Request, session: SessionDep, public_id: PublicId
) -> Response:
    """CORS preflight of a form token request."""
    return preflight(request, await _active_form(session, public_id, None), method="GET")
