"""Operations a deployment adds for its own services (``XYNERGY_RUNTIME_EXTRA_OPERATIONS``).

The catalogue is an allow-list written in code. A deployment that runs services
of its own (an internal ledger, a CRM bridge) declares their endpoints here
instead of forking the code: each names a service reached over the network
(``XYNERGY_SERVICE_URLS``), one fixed path, the scopes a run's key must hold and
a description. The checks are as strict as the code's own list: known scopes
only (at least one, so no operation is open to every key), a path of plain
segments and ``{placeholders}`` (no ``..``, no query string), a name the
built-in catalogue does not already use, and a service with a configured URL
(the platform's own services keep their built-in operations only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xynergy.platform.auth.scopes import unknown_scopes
from xynergy.platform.config import Settings
from xynergy.system_runtime.catalogue import Catalogue, Operation

__all__ = ["ExtraOperation", "ExtraOperationsRefused", "with_extra_operations"]

_SEGMENT = re.compile(r"^(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}|\{[a-z_]{1,32}\})$")
_MAX_PATH_SEGMENTS = 16


class ExtraOperation(BaseModel):
    """One endpoint of a deployment's own service that workflow steps may call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,38}\.[a-z][a-z0-9_]{0,39}$")] = Field(
        description="<group>.<action>, e.g. ledger.record_entry."
    )
    service: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")] = Field(
        description="A service slug with a base URL in XYNERGY_SERVICE_URLS."
    )
    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str = Field(max_length=512, description="/segments and {placeholders} only.")
    scopes: tuple[str, ...] = Field(
        min_length=1, max_length=8, description="Scopes a run's key must hold to call it."
    )
    description: str = Field(min_length=1, max_length=500)

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str) -> str:
        segments = value.split("/")
        if segments[0] != "" or len(segments) < 2 or len(segments) > _MAX_PATH_SEGMENTS + 1:
            raise ValueError("a path starts with / and has 1 to 16 segments")
        for segment in segments[1:]:
            if not _SEGMENT.fullmatch(segment) or segment.strip(".") == "":
                raise ValueError(
                    f"path segment {segment!r}: letters, digits, . _ ~ - or one {{placeholder}}"
                )
        return value

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = unknown_scopes(list(value))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}: no key could ever hold them")
        return value

    def operation(self) -> Operation:
        return Operation(
            self.name,
            self.service,
            self.method,
            self.path,
            frozenset(self.scopes),
            self.description,
        )


class ExtraOperationsRefused(ValueError):
    """``XYNERGY_RUNTIME_EXTRA_OPERATIONS`` does not fit the catalogue or the services."""


def with_extra_operations(
    catalogue: Catalogue, extra: Iterable[ExtraOperation], settings: Settings
) -> Catalogue:
    """``catalogue`` plus the deployment's own operations.

    Raises:
        ExtraOperationsRefused: a name is taken (by the catalogue or twice in
            ``extra``), or a service has no URL in ``service_urls``.
    """
    extra = list(extra)
    if not extra:
        return catalogue
    problems: list[str] = []
    seen: set[str] = set()
    for item in extra:
        if catalogue.get(item.name) is not None or item.name in seen:
            problems.append(f"{item.name}: the name is already an operation")
        seen.add(item.name)
        if item.service not in settings.service_urls:
            problems.append(
                f"{item.name}: service {item.service!r} has no URL in XYNERGY_SERVICE_URLS"
            )
    if problems:
        raise ExtraOperationsRefused(
            "XYNERGY_RUNTIME_EXTRA_OPERATIONS refused: " + "; ".join(problems)
        )
    return catalogue.with_operations(*(item.operation() for item in extra))
