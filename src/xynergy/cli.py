"""``xynergy``: serve, migrate, bootstrap, and manage tenants and keys.

Key secrets are written to the terminal once, through stdout, never through a
logger. Data lives in ``XYNERGY_DATA_DIR`` (default: the user data directory),
whatever the working directory. Every command that prints data takes ``--json``;
every failure is one line on stderr (``XYNERGY_DEBUG=1`` adds the traceback).
"""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.cli_kit.aso import aso_app
from xynergy.cli_kit.database import (
    OPERATOR_ALIAS,
    describe_database,
    require_migrated,
    resolve_tenant,
    schema_problem,
    with_session,
)
from xynergy.cli_kit.errors import DEBUG_VARIABLE, CliError, OneLineErrors
from xynergy.cli_kit.keys import keys_app, show_issued
from xynergy.cli_kit.options import JsonFlag
from xynergy.cli_kit.output import print_json, print_record
from xynergy.cli_kit.tenants import tenants_app
from xynergy.platform.auth.scopes import ADMIN_SCOPE
from xynergy.platform.config import Settings, default_data_dir, get_settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import read_schema_state, upgrade_to_head
from xynergy.platform.logging import configure_logging
from xynergy.platform.tenancy import service

__all__ = ["app", "main"]

# Tracebacks (XYNERGY_DEBUG=1 only) with local variables could print a key secret.
app = typer.Typer(
    cls=OneLineErrors,
    help="Xynergy platform command line. Data lives in XYNERGY_DATA_DIR (default: "
    f"{default_data_dir()}), whatever the working directory. "
    f"Set {DEBUG_VARIABLE}=1 to see tracebacks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(aso_app, name="aso")


def _version() -> str:
    try:
        return version("xynergy")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(requested: bool) -> None:
    if requested:
        typer.echo(f"xynergy {_version()}")
        raise typer.Exit


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Xynergy platform command line."""


@app.command()
def info(as_json: JsonFlag = False) -> None:
    """Where the data is (data dir, database) and whether it needs `xynergy migrate`."""
    settings = get_settings()
    problem = asyncio.run(schema_problem(settings))
    schema = "current" if problem is None else f"{problem}: run `xynergy migrate`"
    facts = {
        "version": _version(),
        "data_dir": str(settings.data_dir.resolve()),
        "database": describe_database(settings),
        "schema": schema,
    }
    if as_json:
        print_json(facts)
        return
    print_record([(name.replace("_", " "), value) for name, value in facts.items()])


@app.command()
def migrate(as_json: JsonFlag = False) -> None:
    """Migrate the configured database to the newest schema."""
    settings = get_settings()
    upgrade_to_head(settings)
    # The workflow engine's tables too, once, before any replica starts. Imported
    # here: the workflow engine is a heavy import every other command does without.
    from xynergy.system_runtime.config import RuntimeSettings
    from xynergy.system_runtime.engine.host import migrate_system_database

    migrate_system_database(settings, RuntimeSettings())

    async def revision() -> str:
        engine = create_engine_from_settings(settings)
        try:
            return ", ".join(sorted((await read_schema_state(engine)).current))
        finally:
            await engine.dispose()

    where, current = describe_database(settings), asyncio.run(revision())
    if as_json:
        print_json({"database": where, "revision": current})
        return
    typer.echo(f"database migrated: {where} (revision {current})")


@app.command()
def bootstrap(
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key",
            help="Issue another admin key even if one exists (the first one was lost).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the operator tenant and a first admin key if none exists."""

    async def work(session: AsyncSession, _settings: Settings) -> service.IssuedKey | None:
        issued = await service.ensure_bootstrap_admin_key(session)
        if issued is not None or not new_key:
            return issued
        operator = await resolve_tenant(session, OPERATOR_ALIAS)
        return await service.create_key(
            session, tenant_id=operator.id, name="recovery admin", scopes=[ADMIN_SCOPE]
        )

    issued = with_session(work)
    if issued is not None:
        show_issued(issued, as_json)
    elif as_json:
        print_json({"key": None, "secret": None})
    else:
        typer.echo(
            "an admin key already exists; lost it? `xynergy bootstrap --new-key` issues another"
        )


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
    from xynergy.platform.admin_app import PLATFORM_SLUG
    from xynergy.server import SERVICES, build_all_in_one, build_standalone

    settings = get_settings()
    slugs = sorted([PLATFORM_SLUG, *SERVICES])
    if service_slug is not None and service_slug not in slugs:
        raise CliError(f"unknown service {service_slug!r}; valid: {', '.join(slugs)}", exit_code=2)
    asyncio.run(require_migrated(settings))
    configure_logging(settings.log_level)
    asgi = build_standalone(settings, service_slug) if service_slug else build_all_in_one(settings)
    # Head size and time limits, connection caps: see platform/serving.py.
    serving.run(asgi, settings, host=host or settings.host, port=port or settings.port)


def main() -> None:
    """Console entry point."""
    app()
