"""``xynergy``: serve, migrate, bootstrap, and manage tenants and keys.

Key secrets are written to the terminal once, through the console, never through
a logger.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.auth.verifier import publish_invalidation
from xynergy.platform.config import Settings, get_settings
from xynergy.platform.db.busy import database_busy
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import NotFound, XynergyError
from xynergy.platform.logging import configure_logging
from xynergy.platform.pagination import PageParams, decode_cursor
from xynergy.platform.runtime import create_redis
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.schemas import ApiKey, ApiKeyCreated, Tenant

# Tracebacks with local variables could print a key secret: never show locals.
app = typer.Typer(
    help="Xynergy platform command line.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
aso_app = typer.Typer(help="ASO Engine: keywords.", no_args_is_help=True)
app.add_typer(aso_app, name="aso")

console = Console()
ResultT = TypeVar("ResultT")
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _with_session(work: Callable[[AsyncSession, Settings], Awaitable[ResultT]]) -> ResultT:
    settings = get_settings()

    async def run() -> ResultT:
        engine = create_engine_from_settings(settings)
        try:
            async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
                return await work(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (XynergyError, DBAPIError) as exc:
        # The same messages the API gives, without a traceback.
        error = exc
        if isinstance(exc, DBAPIError):
            busy = database_busy(
                exc, retry_after_seconds=settings.database_busy_retry_after_seconds
            )
            if busy is None:
                raise
            error = busy
        Console(stderr=True).print(f"error: {error.code}: {error.detail}", style="red")
        raise typer.Exit(code=1) from None


async def _invalidate_everywhere(settings: Settings, key_hash: str) -> None:
    redis = create_redis(settings)
    if redis is None:
        return
    try:
        await publish_invalidation(redis, settings, key_hash)
    finally:
        await redis.aclose()


def _emit(payload: Any, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(payload, default=str))
    else:
        console.print(payload)


def _page_params(limit: int | None, cursor: str | None, settings: Settings) -> PageParams:
    size = settings.page_size_default if limit is None else limit
    if not 1 <= size <= settings.page_size_max:
        raise typer.BadParameter(f"limit must be between 1 and {settings.page_size_max}")
    return PageParams(limit=size, after=decode_cursor(cursor) if cursor else None)


def _show_page(
    rows: Sequence[BaseModel],
    next_cursor: str | None,
    as_json: bool,
    columns: Sequence[str],
    cells: Callable[[Any], Sequence[str]],
) -> None:
    if as_json:
        items = [row.model_dump(mode="json") for row in rows]
        _emit({"items": items, "next_cursor": next_cursor}, True)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)
    if next_cursor:
        console.print(f"next page: --cursor {next_cursor}")


def _show_issued(issued: service.IssuedKey, as_json: bool) -> None:
    created = ApiKeyCreated(key=ApiKey.model_validate(issued.key), secret=issued.secret)
    if as_json:
        _emit(created.model_dump(mode="json"), True)
        return
    console.print(f"key id: {created.key.id}  tenant: {created.key.tenant_id}", soft_wrap=True)
    console.print(f"scopes: {', '.join(created.key.scopes)}", soft_wrap=True)
    console.print("secret (shown once, store it now):", style="bold yellow")
    console.print(created.secret, highlight=False, soft_wrap=True)


@app.command()
def migrate() -> None:
    """Migrate the configured database to the newest schema."""
    settings = get_settings()
    upgrade_to_head(settings)
    console.print(f"database migrated: {settings.resolved_database_url.split('@')[-1]}")


@app.command()
def bootstrap(as_json: JsonFlag = False) -> None:
    """Create the operator tenant and a first admin key if none exists."""

    async def work(session: AsyncSession, _settings: Settings) -> service.IssuedKey | None:
        return await service.ensure_bootstrap_admin_key(session)

    issued = _with_session(work)
    if issued is None:
        if not as_json:
            console.print("an admin key already exists; create more with `xynergy keys create`")
        return
    _show_issued(issued, as_json)


@app.command()
def serve(
    service_slug: Annotated[
        str | None, typer.Option("--service", help="Serve one service at its root.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Serve every service (all-in-one) or one with --service."""
    from xynergy.platform import serving
    from xynergy.server import build_all_in_one, build_standalone

    settings = get_settings()
    configure_logging(settings.log_level)
    asgi = build_standalone(settings, service_slug) if service_slug else build_all_in_one(settings)
    # Head size and time limits, connection caps: see platform/serving.py.
    serving.run(asgi, settings, host=host or settings.host, port=port or settings.port)


@tenants_app.command("create")
def tenants_create(name: str, as_json: JsonFlag = False) -> None:
    """Create a tenant."""

    async def work(session: AsyncSession, _settings: Settings) -> Tenant:
        return Tenant.model_validate(await service.create_tenant(session, name=name))

    _emit(_with_session(work).model_dump(mode="json"), as_json)


@tenants_app.command("list")
def tenants_list(
    limit: int | None = None, cursor: str | None = None, as_json: JsonFlag = False
) -> None:
    """List tenants, newest first."""

    async def work(session: AsyncSession, settings: Settings) -> tuple[list[Tenant], str | None]:
        params = _page_params(limit, cursor, settings)
        rows, next_cursor = await service.list_tenants(session, params=params)
        return [Tenant.model_validate(r) for r in rows], next_cursor

    rows, next_cursor = _with_session(work)
    _show_page(
        rows,
        next_cursor,
        as_json,
        ("id", "name", "created"),
        lambda row: (row.id, row.name, row.created_at.isoformat()),
    )


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
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
        return await service.create_key(
            session,
            tenant_id=tenant,
            name=name,
            scopes=[s.strip() for s in scopes.split(",") if s.strip()],
            environment="test" if environment == "test" else "live",
            expires_in=timedelta(days=expires_in_days) if expires_in_days else None,
        )

    issued = _with_session(work)
    _show_issued(issued, as_json)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    limit: int | None = None,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """List a tenant's keys (never their secrets)."""

    async def work(session: AsyncSession, settings: Settings) -> tuple[list[ApiKey], str | None]:
        params = _page_params(limit, cursor, settings)
        rows, next_cursor = await service.list_keys(session, tenant_id=tenant, params=params)
        return [ApiKey.model_validate(r) for r in rows], next_cursor

    def cells(row: ApiKey) -> tuple[str, ...]:
        state = "revoked" if row.revoked_at else ("rotating" if row.grace_until else "active")
        masked = f"{row.display_prefix}…{row.last4}"
        return (row.id, row.name, masked, ",".join(row.scopes), state)

    rows, next_cursor = _with_session(work)
    _show_page(rows, next_cursor, as_json, ("id", "name", "key", "scopes", "state"), cells)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    grace_seconds: Annotated[int | None, typer.Option(min=0)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a successor key; the old one stays valid for the grace period."""

    async def work(session: AsyncSession, settings: Settings) -> service.IssuedKey:
        grace = settings.key_rotation_grace_seconds if grace_seconds is None else grace_seconds
        return await service.rotate_key(
            session,
            tenant_id=tenant,
            key_id=key_id,
            grace=timedelta(seconds=grace),
            invalidate=lambda key_hash: _invalidate_everywhere(settings, key_hash),
        )

    issued = _with_session(work)
    _show_issued(issued, as_json)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str,
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key now, on every replica."""

    async def work(session: AsyncSession, settings: Settings) -> ApiKey:
        key = await service.revoke_key(
            session,
            tenant_id=tenant,
            key_id=key_id,
            invalidate=lambda key_hash: _invalidate_everywhere(settings, key_hash),
        )
        return ApiKey.model_validate(key)

    _emit(_with_session(work).model_dump(mode="json"), as_json)


_IMPORT_FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}
_IMPORT_CHUNK_BYTES = 1_048_576


@aso_app.command("import-keywords")
def aso_import_keywords(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str, typer.Option(help="Tenant id.")],
    mode: Annotated[str, typer.Option(help="all_or_nothing or best_effort.")] = "all_or_nothing",
    locale: Annotated[str | None, typer.Option(help="Locale of rows without one.")] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson (default: from the suffix).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import keywords from a CSV or JSON-lines file, streamed, as the API does."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from xynergy.aso_engine.config import AsoSettings
    from xynergy.aso_engine.keywords import service as keywords
    from xynergy.aso_engine.keywords.rules import KeywordInvalid, normalise_locale
    from xynergy.aso_engine.keywords.schemas import ImportReport
    from xynergy.platform.tenancy.repository import TenantRepository

    chosen = file_format or _IMPORT_FORMATS.get(file.suffix.lower())
    if chosen not in ("csv", "ndjson"):
        raise typer.BadParameter("use a .csv, .ndjson or .jsonl file, or --format csv|ndjson")
    if mode not in ("all_or_nothing", "best_effort"):
        raise typer.BadParameter("mode must be all_or_nothing or best_effort")
    try:
        default_locale = normalise_locale(locale) if locale else None
    except KeywordInvalid as exc:
        raise typer.BadParameter(str(exc)) from None
    progress = Progress(
        *Progress.get_default_columns()[:1],
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        disable=as_json,
    )
    task = progress.add_task("importing", total=file.stat().st_size)

    async def chunks() -> AsyncIterator[bytes]:
        with file.open("rb") as handle:
            while chunk := handle.read(_IMPORT_CHUNK_BYTES):
                yield chunk

    async def work(session: AsyncSession, _settings: Settings) -> ImportReport:
        if await TenantRepository(session).get(tenant) is None:
            raise NotFound("No such tenant.")
        outcome = await keywords.import_keywords(
            session,
            sessions=async_sessionmaker(session.bind, expire_on_commit=False),
            tenant_id=tenant,
            chunks=chunks(),
            file_format="csv" if chosen == "csv" else "ndjson",
            mode="best_effort" if mode == "best_effort" else "all_or_nothing",
            default_locale=default_locale,
            bounds=AsoSettings(),
            on_progress=lambda read: progress.advance(task, read),
        )
        return outcome.report

    with progress:
        report = _with_session(work)
    _emit(report.model_dump(mode="json"), as_json)
    if mode == "all_or_nothing" and report.rejected:
        Console(stderr=True).print("rows were rejected; nothing was written", style="red")
        raise typer.Exit(code=1)


def main() -> None:
    """Console entry point."""
    app()
