"""``xynergy aso``: ASO Engine operations run on the machine that holds the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.cli_kit.database import resolve_tenant, with_session
from xynergy.cli_kit.options import JsonFlag, TenantOption
from xynergy.cli_kit.output import print_json, print_record
from xynergy.platform.config import Settings

__all__ = ["aso_app"]

aso_app = typer.Typer(help="ASO Engine: keywords.", no_args_is_help=True)

_IMPORT_FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}
_IMPORT_CHUNK_BYTES = 1_048_576


@aso_app.command("import-keywords")
def aso_import_keywords(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: TenantOption,
    mode: Annotated[str, typer.Option(help="all_or_nothing or best_effort.")] = "all_or_nothing",
    locale: Annotated[str | None, typer.Option(help="Locale of rows without one.")] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson (default: from the suffix).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import keywords from a CSV or JSON-lines file, streamed, as the API does."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from xynergy.aso_engine.config import AsoSettings
    from xynergy.aso_engine.keywords import service as keywords
    from xynergy.aso_engine.keywords.rules import KeywordInvalid, normalise_locale
    from xynergy.aso_engine.keywords.schemas import ImportReport

    chosen = file_format or _IMPORT_FORMATS.get(file.suffix.lower())
    if chosen not in ("csv", "ndjson"):
        raise typer.BadParameter("use a .csv, .ndjson or .jsonl file, or --format csv|ndjson")
    if mode not in ("all_or_nothing", "best_effort"):
        raise typer.BadParameter("mode must be all_or_nothing or best_effort")
    try:
        default_locale = normalise_locale(locale) if locale else None
    except KeywordInvalid as exc:
        raise typer.BadParameter(str(exc)) from None
    # Read before the progress bar starts: a bad setting is then the only thing printed.
    bounds = AsoSettings()
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
        owner = await resolve_tenant(session, tenant)
        outcome = await keywords.import_keywords(
            session,
            sessions=async_sessionmaker(session.bind, expire_on_commit=False),
            tenant_id=owner.id,
            chunks=chunks(),
            file_format="csv" if chosen == "csv" else "ndjson",
            mode="best_effort" if mode == "best_effort" else "all_or_nothing",
            default_locale=default_locale,
            bounds=bounds,
            on_progress=lambda read: progress.advance(task, read),
        )
        return outcome.report

    with progress:
        report = with_session(work)
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        counts = ("received", "inserted", "duplicates_in_file", "duplicates_existing", "rejected")
        print_record([(name.replace("_", " "), str(getattr(report, name))) for name in counts])
        for rejection in report.rejections:
            typer.echo(f"line {rejection.line}: {rejection.reason}")
        if report.rejections_truncated:
            typer.echo("(more rows were rejected; only the first are listed)")
    if mode == "all_or_nothing" and report.rejected:
        typer.secho("rows were rejected; nothing was written", err=True, fg="red")
        raise typer.Exit(code=1)
