"""Finding the definition a run starts: a built-in or one of the tenant's versions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.exceptions import NotFound
from xynergy.system_runtime.definitions.builtins import BUILT_IN_DEFINITIONS
from xynergy.system_runtime.definitions.spec import WorkflowSpec
from xynergy.system_runtime.models import WorkflowDefinition

__all__ = ["BUILT_IN_VERSION", "FoundDefinition", "find_definition"]

BUILT_IN_VERSION = 1


@dataclass(frozen=True, slots=True)
class FoundDefinition:
    spec: WorkflowSpec
    version: int
    built_in: bool


async def find_definition(
    session: AsyncSession, *, tenant_id: str, name: str, version: int | None
) -> FoundDefinition:
    """The tenant's definition ``name`` (its latest version unless ``version``), else
    the built-in of that name. A tenant's own definition shadows a built-in.

    Raises:
        NotFound: neither exists (or not that version).
    """
    query = select(WorkflowDefinition).where(
        WorkflowDefinition.tenant_id == tenant_id, WorkflowDefinition.name == name
    )
    if version is not None:
        query = query.where(WorkflowDefinition.version == version)
    row = await session.scalar(query.order_by(WorkflowDefinition.version.desc()).limit(1))
    if row is not None:
        return FoundDefinition(WorkflowSpec.model_validate(row.spec), row.version, False)
    built_in = BUILT_IN_DEFINITIONS.get(name)
    if built_in is not None and version in (None, BUILT_IN_VERSION):
        return FoundDefinition(built_in, BUILT_IN_VERSION, True)
    raise NotFound(
        f"No workflow definition {name!r}" + (f" version {version}." if version else ".")
    )
