"""Intake form operations: bounds, origin and webhook URL checks, secrets.

Functions only flush; the request's unit of work commits. Everything is checked
before a row is touched, so a refusal writes nothing.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.forms.repository import FormRepository
from xynergy.intelligence_gateway.forms.schemas import (
    Form,
    FormCreate,
    FormFilters,
    FormUpdate,
)
from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.intelligence_gateway.submissions.stats import invalidate_stats_after_commit
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.net_policy import is_public_host
from xynergy.platform.pagination import PageParams, split_page
from xynergy.platform.schemas import Page
from xynergy.platform.text import sent_length

__all__ = [
    "FormRules",
    "create_form",
    "delete_form",
    "get_form",
    "list_forms",
    "new_public_id",
    "new_webhook_secret",
    "normalise_origin",
    "update_form",
]

PUBLIC_ID_PREFIX = "frm_"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a display prefix, not a secret
_PUBLIC_ID_BYTES = 15  # 120 random bits, 20 characters
_SECRET_BYTES = 32
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_MAX_HOST_CHARS = 253


@dataclass(frozen=True, slots=True)
class FormRules:
    """What a form's fields are checked against: the service's bounds and the environment."""

    intake: IntakeSettings
    production: bool
    # XYNERGY_OUTBOX_ALLOW_PRIVATE_ADDRESSES: one switch for the URLs webhooks may
    # be given and the addresses the outbox delivers to.
    allow_private_webhooks: bool = False


def new_public_id() -> str:
    """A public, non-secret, unguessable form id."""
    return PUBLIC_ID_PREFIX + secrets.token_urlsafe(_PUBLIC_ID_BYTES)


def new_webhook_secret() -> str:
    """A fresh HMAC key for a form's webhook signatures."""
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def _checked_name(name: str, intake: IntakeSettings) -> str:
    # Sanitised by its schema type (no markup survives: names are shown in
    # dashboards); the configured bound applies to what was sent.
    if sent_length(name) > intake.form_name_max_chars:
        raise ValidationFailed(f"name: at most {intake.form_name_max_chars} characters.")
    return name


def _split(raw: str, field: str, rules: FormRules) -> tuple[SplitResult, str, int | None]:
    """``raw`` split into its parts, its scheme lower-cased and its port read."""
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise ValidationFailed(f"{field}: spaces and control characters are not allowed.")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed(f"{field}: not a valid URL.") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValidationFailed(f"{field}: only http and https are allowed.")
    if rules.production and scheme != "https":
        raise ValidationFailed(f"{field}: https is required in production.")
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(f"{field}: credentials in the URL are not allowed.")
    if parts.fragment or raw.endswith("#"):
        raise ValidationFailed(f"{field}: a fragment is not allowed.")
    return parts, scheme, port


def _host(raw_host: str | None, field: str) -> str | ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The host as an IP address, or as an ASCII (punycode) name; ValidationFailed otherwise."""
    host = (raw_host or "").rstrip(".")
    if not host:
        raise ValidationFailed(f"{field}: a host is required.")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValidationFailed(f"{field}: not a valid IPv6 address.") from exc
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # Browsers and resolvers read "127.1", "0x7f.1" and "2130706433" as IPv4
        # addresses; so does inet_aton.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError as exc:
            raise ValidationFailed(f"{field}: not a valid IPv4 address.") from exc
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValidationFailed(f"{field}: not a valid host name.") from exc
    if len(ascii_host) > _MAX_HOST_CHARS or not all(
        _LABEL.fullmatch(label) for label in ascii_host.split(".")
    ):
        raise ValidationFailed(f"{field}: not a valid host name.")
    return ascii_host


def normalise_origin(raw: str, rules: FormRules, field: str = "origin") -> str:
    """``raw`` as a browser sends it in ``Origin``: ``scheme://host[:port]``, lower case."""
    if "*" in raw:
        raise ValidationFailed(f"{field}: wildcards are not allowed; list exact origins.")
    parts, scheme, port = _split(raw, field, rules)
    if parts.path not in ("", "/") or parts.query or raw.endswith("?"):
        raise ValidationFailed(f"{field}: an origin has no path or query (scheme://host[:port]).")
    host = _host(parts.hostname, field)
    text = f"[{host}]" if isinstance(host, ipaddress.IPv6Address) else str(host)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        text += f":{port}"
    return f"{scheme}://{text}"


def _origins(raw: Sequence[str], rules: FormRules) -> list[str]:
    if len(raw) > rules.intake.form_origins_max:
        raise ValidationFailed(f"allowed_origins: at most {rules.intake.form_origins_max}.")
    origins: list[str] = []
    for index, text in enumerate(raw):
        origin = normalise_origin(text, rules, f"allowed_origins.{index}")
        if origin not in origins:
            origins.append(origin)
    return origins


def _webhook_url(raw: str, rules: FormRules) -> str:
    field = "webhook_url"
    if len(raw) > rules.intake.webhook_url_max_chars:
        raise ValidationFailed(f"{field}: at most {rules.intake.webhook_url_max_chars} characters.")
    parts, _scheme, _port = _split(raw, field, rules)
    host = _host(parts.hostname, field)
    # Only what the URL says is checked here; what a name resolves to is checked
    # again when delivering (a name can point anywhere by then).
    if not rules.allow_private_webhooks and not is_public_host(host):
        raise ValidationFailed(
            f"{field}: private, loopback, link-local and other special-purpose addresses "
            "and local names are not allowed."
        )
    return raw


async def create_form(
    session: AsyncSession, *, tenant_id: str, data: FormCreate, rules: FormRules
) -> IntakeForm:
    """Create a form for ``tenant_id``; its webhook secret is readable on the result once."""
    now = utcnow()
    form = IntakeForm(
        tenant_id=tenant_id,
        public_id=new_public_id(),
        kind=data.kind,
        name=_checked_name(data.name, rules.intake),
        allowed_origins=_origins(data.allowed_origins, rules),
        webhook_url=_webhook_url(data.webhook_url, rules) if data.webhook_url else None,
        webhook_secret=new_webhook_secret(),
        active=True,
        created_at=now,
        updated_at=now,
    )
    return await FormRepository(session).add(form)


async def get_form(session: AsyncSession, *, tenant_id: str, form_id: str) -> IntakeForm:
    """A form of ``tenant_id``; another tenant's id answers NotFound."""
    form = await FormRepository(session).get(tenant_id=tenant_id, form_id=form_id)
    if form is None:
        raise NotFound("No such form.")
    return form


async def update_form(
    session: AsyncSession, *, tenant_id: str, form_id: str, changes: FormUpdate, rules: FormRules
) -> tuple[IntakeForm, str | None]:
    """Apply ``changes``; answers the form and its new webhook secret if one was made."""
    sent = changes.model_fields_set
    name = _checked_name(changes.name, rules.intake) if changes.name is not None else None
    origins = _origins(changes.allowed_origins, rules) if changes.allowed_origins else None
    webhook_url = _webhook_url(changes.webhook_url, rules) if changes.webhook_url else None
    form = await get_form(session, tenant_id=tenant_id, form_id=form_id)
    if name is not None:
        form.name = name
    if origins is not None:
        form.allowed_origins = origins
    if "webhook_url" in sent:
        form.webhook_url = webhook_url
    if changes.active is not None:
        form.active = changes.active
    now = utcnow()
    new_secret = None
    if changes.rotate_webhook_secret or form.webhook_secret is None:
        new_secret = _rotate_webhook_secret(form, rules.intake.webhook_secret_grace_seconds, now)
    elif _previous_secret_expired(form, now):
        # Touched anyway: a secret that signs nothing any more is not kept.
        form.previous_webhook_secret = form.previous_webhook_secret_expires_at = None
    form.updated_at = now
    await FormRepository(session).flush()
    return form, new_secret


def _rotate_webhook_secret(form: IntakeForm, grace_seconds: float, now: datetime) -> str:
    """Give ``form`` a new secret; the one it replaces keeps signing beside it for
    ``grace_seconds`` (none: it stops at once). Answers the new secret.

    A rotation during a grace period replaces the previous secret too: at most
    two secrets ever sign.
    """
    old, new = form.webhook_secret, new_webhook_secret()
    keep_old = old is not None and grace_seconds > 0
    form.previous_webhook_secret = old if keep_old else None
    form.previous_webhook_secret_expires_at = (
        now + timedelta(seconds=grace_seconds) if keep_old else None
    )
    form.webhook_secret = new
    return new


def _previous_secret_expired(form: IntakeForm, now: datetime) -> bool:
    expires = form.previous_webhook_secret_expires_at
    return expires is not None and expires <= now


async def delete_form(
    session: AsyncSession, *, tenant_id: str, form_id: str, cache: PlatformCache
) -> None:
    """Delete a form with its submissions and pending webhook messages."""
    form = await get_form(session, tenant_id=tenant_id, form_id=form_id)
    await FormRepository(session).delete(form)
    invalidate_stats_after_commit(session, cache, tenant_id)


async def list_forms(
    session: AsyncSession, *, tenant_id: str, filters: FormFilters, params: PageParams
) -> Page[Form]:
    """One newest-first page of ``tenant_id``'s forms."""
    rows = await FormRepository(session).page(tenant_id=tenant_id, filters=filters, params=params)
    items, cursor = split_page(rows, params, lambda form: (form.created_at, form.id))
    return Page[Form](items=[Form.model_validate(form) for form in items], next_cursor=cursor)
