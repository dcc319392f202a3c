"""``xynergy keys``: issue, list, rotate and revoke API keys.

A secret is printed once, on stdout, when it is issued; listings show only the
display prefix and the last four characters.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.cli_kit.database import resolve_tenant, with_session
from xynergy.cli_kit.options import JsonFlag, TenantOption, page_params
from xynergy.cli_kit.output import print_json, print_record, print_rows, print_warning
from xynergy.platform.auth.verifier import publish_invalidation
from xynergy.platform.config import Settings
from xynergy.platform.runtime import create_redis
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.schemas import ApiKey, ApiKeyCreated

__all__ = ["keys_app", "show_issued"]

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


async def _invalidate_everywhere(settings: Settings, key_hash: str) -> None:
    redis = create_redis(settings)
    if redis is None:
        return
    try:
        await publish_invalidation(redis, settings, key_hash)
    except (RedisConnectionError, RedisTimeoutError):
        # The change is committed and the revocation epoch moved with it: every
        # replica drops the key within key_revocation_poll_seconds anyway.
        print_warning(
            "Redis did not take the broadcast; replicas drop the key within "
            f"{settings.key_revocation_poll_seconds:g} s (XYNERGY_KEY_REVOCATION_POLL_SECONDS)"
        )
    finally:
        await redis.aclose()


def show_issued(issued: service.IssuedKey, as_json: bool) -> None:
    """Print an issued key, its secret included (the only time it is shown)."""
    created = ApiKeyCreated(key=ApiKey.model_validate(issued.key), secret=issued.secret)
    if as_json:
        print_json(created.model_dump(mode="json"))
        return
    print_record(
        [
            ("key id", created.key.id),
            ("tenant", created.key.tenant_id),
            ("scopes", ", ".join(created.key.scopes)),
        ]
    )
    typer.secho("secret (shown once, store it now):", fg="yellow", bold=True)
    typer.echo(created.secret)


def _key_state(key: ApiKey) -> str:
    return "revoked" if key.revoked_at else ("rotating" if key.grace_until else "active")


@keys_app.command("create")
def keys_create(
    tenant: TenantOption,
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    environment: Annotated[str, typer.Option(help="live or test.")] = "live",
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a key; its secret is printed once."""
    if environment not in ("live", "test"):
        raise typer.BadParameter("environment must be live or test")

    async def work(session: AsyncSession, _settings: Settings) -> service.IssuedKey:
        owner = await resolve_tenant(session, tenant)
        return await service.create_key(
            session,
            tenant_id=owner.id,
            name=name,
            scopes=[s.strip() for s in scopes.split(",") if s.strip()],
            environment="test" if environment == "test" else "live",
            expires_in=timedelta(days=expires_in_days) if expires_in_days else None,
        )

    show_issued(with_session(work), as_json)


@keys_app.command("list")
def keys_list(
    tenant: TenantOption,
    limit: int | None = None,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List a tenant's keys (never their secrets)."""

    async def work(session: AsyncSession, settings: Settings) -> tuple[list[ApiKey], str | None]:
        params = page_params(limit, cursor, settings)
        owner = await resolve_tenant(session, tenant)
        rows, next_cursor = await service.list_keys(session, tenant_id=owner.id, params=params)
        return [ApiKey.model_validate(r) for r in rows], next_cursor

    keys, next_cursor = with_session(work)
    if as_json:
        items = [k.model_dump(mode="json") for k in keys]
        print_json({"items": items, "next_cursor": next_cursor})
        return
    rows = [
        (k.id, k.name, f"{k.display_prefix}…{k.last4}", ",".join(k.scopes), _key_state(k))
        for k in keys
    ]
    columns = ("ID", "NAME", "KEY", "SCOPES", "STATE")
    print_rows(columns, rows, next_cursor=next_cursor, empty="no keys")


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    tenant: TenantOption,
    grace_seconds: Annotated[int | None, typer.Option(min=0)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a successor key; the old one stays valid for the grace period."""

    async def work(session: AsyncSession, settings: Settings) -> service.IssuedKey:
        grace = settings.key_rotation_grace_seconds if grace_seconds is None else grace_seconds
        owner = await resolve_tenant(session, tenant)
        return await service.rotate_key(
            session,
            tenant_id=owner.id,
            key_id=key_id,
            grace=timedelta(seconds=grace),
            invalidate=lambda key_hash: _invalidate_everywhere(settings, key_hash),
        )

    show_issued(with_session(work), as_json)


@keys_app.command("revoke")
def keys_revoke(key_id: str, tenant: TenantOption, as_json: JsonFlag = False) -> None:
    """Revoke a key now, on every replica."""

    async def work(session: AsyncSession, settings: Settings) -> ApiKey:
        owner = await resolve_tenant(session, tenant)
        key = await service.revoke_key(
            session,
            tenant_id=owner.id,
            key_id=key_id,
            invalidate=lambda key_hash: _invalidate_everywhere(settings, key_hash),
        )
        return ApiKey.model_validate(key)

    key = with_session(work)
    if as_json:
        print_json(key.model_dump(mode="json"))
        return
    revoked_at = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
    print_record([("key id", key.id), ("tenant", key.tenant_id), ("revoked", revoked_at)])
