"""Where the generated references live, and how a stale one is found.

``README.md`` keeps its scopes table between two markers, so the rest of the
README stays hand-written; ``docs/settings.md`` and ``.env.example`` are
generated whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import BaseSettings

from xynergy.reference.scopes import mounted_apps, render_scopes_table, route_uses
from xynergy.reference.settings import (
    discover_settings,
    render_env_example,
    render_settings_markdown,
)

__all__ = [
    "SCOPES_BEGIN",
    "SCOPES_END",
    "GeneratedFile",
    "generate",
    "splice",
    "stale_files",
    "write",
]

SCOPES_BEGIN = "<!-- BEGIN generated: scopes (make reference) -->"
SCOPES_END = "<!-- END generated: scopes -->"
README = Path("README.md")
SETTINGS_REFERENCE = Path("docs/settings.md")
ENV_EXAMPLE = Path(".env.example")


@dataclass(frozen=True)
class GeneratedFile:
    """A file under the repository root, what it holds and what it should hold."""

    path: Path
    current: str
    expected: str

    @property
    def is_stale(self) -> bool:
        """Whether the file differs from what the generator writes."""
        return self.current != self.expected

    def diff(self) -> str:
        """A unified diff from the file as it is to the file as generated."""
        return "".join(
            difflib.unified_diff(
                self.current.splitlines(keepends=True),
                self.expected.splitlines(keepends=True),
                fromfile=f"{self.path} (on disk)",
                tofile=f"{self.path} (generated)",
            )
        )


def splice(document: str, begin: str, end: str, generated: str) -> str:
    """``document`` with the text between ``begin`` and ``end`` replaced by ``generated``.

    Raises:
        ValueError: when the markers are missing, repeated or out of order.
    """
    start, stop = document.find(begin), document.find(end)
    if document.count(begin) != 1 or document.count(end) != 1 or stop < start:
        raise ValueError(f"expected one {begin!r} followed by one {end!r}")
    return f"{document[: start + len(begin)]}\n{generated}{document[stop:]}"


def generate(
    root: Path,
    *,
    apps: Mapping[str, FastAPI] | None = None,
    models: list[type[BaseSettings]] | None = None,
) -> list[GeneratedFile]:
    """Each generated file under ``root``: as it is and as it should be.

    Args:
        root: The repository root.
        apps: Mount path -> app; default: every service and the admin app.
        models: Settings models; default: every one found in the ``xynergy`` package.
    """
    apps = mounted_apps() if apps is None else apps
    models = discover_settings() if models is None else models
    readme = _read(root / README)
    table = render_scopes_table(route_uses(apps))
    return [
        GeneratedFile(README, readme, splice(readme, SCOPES_BEGIN, SCOPES_END, table)),
        GeneratedFile(
            SETTINGS_REFERENCE,
            _read(root / SETTINGS_REFERENCE),
            render_settings_markdown(models),
        ),
        GeneratedFile(ENV_EXAMPLE, _read(root / ENV_EXAMPLE), render_env_example(models)),
    ]


def stale_files(
    root: Path,
    *,
    apps: Mapping[str, FastAPI] | None = None,
    models: list[type[BaseSettings]] | None = None,
) -> list[GeneratedFile]:
    """The generated files under ``root`` that are out of date (arguments as ``generate``)."""
    return [file for file in generate(root, apps=apps, models=models) if file.is_stale]


def write(root: Path, files: list[GeneratedFile]) -> list[Path]:
    """Write every stale file of ``files`` under ``root``; the paths written."""
    written = []
    for file in files:
        if file.is_stale:
            target = root / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.expected, encoding="utf-8")
            written.append(file.path)
    return written


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""
