"""Options and parameters several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from xynergy.cli_kit.database import OPERATOR_ALIAS
from xynergy.platform.config import Settings
from xynergy.platform.pagination import PageParams, decode_cursor

__all__ = ["JsonFlag", "TenantOption", "page_params"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
TenantOption = Annotated[
    str,
    typer.Option(
        "--tenant",
        help=f"Tenant id, `{OPERATOR_ALIAS}` (the operator tenant) or tenant name, "
        "tried in that order.",
    ),
]


def page_params(limit: int | None, cursor: str | None, settings: Settings) -> PageParams:
    """The page a ``--limit``/``--cursor`` pair asks for, within the configured bounds."""
    size = settings.page_size_default if limit is None else limit
    if not 1 <= size <= settings.page_size_max:
        raise typer.BadParameter(f"limit must be between 1 and {settings.page_size_max}")
    return PageParams(limit=size, after=decode_cursor(cursor) if cursor else None)
