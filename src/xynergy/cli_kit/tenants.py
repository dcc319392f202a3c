"""``xynergy tenants``: create and list tenants."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.cli_kit.database import with_session
from xynergy.cli_kit.errors import CliError
from xynergy.cli_kit.options import JsonFlag, page_params
from xynergy.cli_kit.output import print_json, print_record, print_rows
from xynergy.platform.config import Settings
from xynergy.platform.errors import describe_validation_errors
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.schemas import Tenant, TenantCreate

__all__ = ["tenants_app"]

tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)


@tenants_app.command("create")
def tenants_create(name: str, as_json: JsonFlag = False) -> None:
    """Create a tenant (the same name rules as the API)."""
    try:
        checked = TenantCreate(name=name).name
    except ValidationError as exc:
        raise CliError(
            f"invalid tenant name: {describe_validation_errors(exc.errors())[2]}"
        ) from None

    async def work(session: AsyncSession, _settings: Settings) -> Tenant:
        return Tenant.model_validate(await service.create_tenant(session, name=checked))

    tenant = with_session(work)
    if as_json:
        print_json(tenant.model_dump(mode="json"))
        return
    print_record([("tenant", tenant.name), ("id", tenant.id)])


@tenants_app.command("list")
def tenants_list(
    limit: int | None = None, cursor: str | None = None, as_json: JsonFlag = False
) -> None:
    """List tenants, newest first."""

    async def work(session: AsyncSession, settings: Settings) -> tuple[list[Tenant], str | None]:
        params = page_params(limit, cursor, settings)
        rows, next_cursor = await service.list_tenants(session, params=params)
        return [Tenant.model_validate(r) for r in rows], next_cursor

    tenants, next_cursor = with_session(work)
    if as_json:
        items = [t.model_dump(mode="json") for t in tenants]
        print_json({"items": items, "next_cursor": next_cursor})
        return
    rows = [(t.id, t.name, t.created_at.isoformat(timespec="seconds")) for t in tenants]
    print_rows(("ID", "NAME", "CREATED"), rows, next_cursor=next_cursor, empty="no tenants")
