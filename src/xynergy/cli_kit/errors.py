"""Every failure of a command as one line on stderr, never a traceback by default.

A person at a terminal needs to know what went wrong and what to do next (run
``xynergy migrate``, fix ``XYNERGY_PORT``); the traceback of an unexpected error
is one environment variable away (``XYNERGY_DEBUG=1``) instead of hundreds of
lines that may quote SQL and its parameters.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from xynergy.platform.exceptions import XynergyError
from xynergy.platform.settings_errors import describe_settings_error

__all__ = ["DEBUG_VARIABLE", "CliError", "OneLineErrors", "debug_requested", "migrate_hint"]

DEBUG_VARIABLE = "XYNERGY_DEBUG"
_TRUTHY = frozenset({"1", "true", "yes", "on"})
_MAX_MESSAGE_CHARS = 300
# Undefined table (PostgreSQL); SQLite says "no such table".
_UNDEFINED_TABLE_SQLSTATE = "42P01"


class CliError(Exception):
    """A failure the user can act on: printed as ``error: <message>``."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def migrate_hint(where: str, problem: str) -> CliError:
    """The error of every command that needs tables the database lacks."""
    return CliError(f"the database at {where} {problem}: run `xynergy migrate`")


def debug_requested() -> bool:
    """Whether ``XYNERGY_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in _TRUTHY


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:_MAX_MESSAGE_CHARS]


def _is_missing_table(exc: DBAPIError) -> bool:
    driver_error = exc.orig
    if getattr(driver_error, "sqlstate", None) == _UNDEFINED_TABLE_SQLSTATE:
        return True
    return "no such table" in str(driver_error)


def explain(exc: Exception) -> tuple[str, int]:
    """``(one-line message, exit code)`` for an exception a command raised."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    if isinstance(exc, XynergyError):
        return f"{exc.code}: {exc.detail}", 1
    settings_problem = describe_settings_error(exc)
    if settings_problem is not None:
        return f"invalid setting: {settings_problem}", 1
    if isinstance(exc, DBAPIError) and _is_missing_table(exc):
        return "the database has no tables yet: run `xynergy migrate`", 1
    detail = _first_line(str(exc.orig if isinstance(exc, DBAPIError) else exc))
    kind = type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__
    return f"unexpected {kind}: {detail} (set {DEBUG_VARIABLE}=1 for the traceback)", 1


class OneLineErrors(TyperGroup):
    """The root command group: turns what a command raises into one line."""

    # Any: the context class is typer's private copy of click's.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        # Usage errors, --help, typer.Exit: typer prints them as usual.
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if debug_requested():
                raise
            message, exit_code = explain(exc)
            typer.secho(f"error: {message}", err=True, fg="red")
            raise typer.Exit(code=exit_code) from None
