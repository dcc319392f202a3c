"""Finding the definition a run starts: a built-in or one of the tenant's versions."""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.exceptions import NotFound
from xynergy.system_runtime.definitions.builtins import BUILT_IN_DEFINITIONS
from xynergy.system_runtime.definitions.spec import WorkflowSpec
from xynergy.system_runtime.models import WorkflowDefinition

__all__ = ["BUILT_IN_VERSION", "CheckedSpecs", "FoundDefinition", "find_definition"]

BUILT_IN_VERSION = 1
_CHECKED_SPECS_MAX = 1024


@dataclass(frozen=True, slots=True)
class FoundDefinition:
    spec: WorkflowSpec
    version: int
    built_in: bool
    # Already checked against this runtime's catalogue and settings (CheckedSpecs).
    checked: bool = False


class CheckedSpecs:
    """Definitions one runtime has parsed and checked, by (tenant, name, version).

    A version never changes and is never deleted, so a run's start parses and
    checks each one once per process instead of on every start. Bounded (LRU).
    """

    def __init__(self, max_entries: int = _CHECKED_SPECS_MAX) -> None:
        self._specs: LRUCache[tuple[str, str, int], WorkflowSpec] = LRUCache(max_entries)

    def get(self, tenant_id: str, name: str, version: int) -> WorkflowSpec | None:
        return self._specs.get((tenant_id, name, version))

    def put(self, tenant_id: str, name: str, version: int, spec: WorkflowSpec) -> None:
        self._specs[(tenant_id, name, version)] = spec

    def clear(self) -> None:
        """Forget every spec: the next start checks again, and a run started before
        reads its definition from its row (engine/plan.py)."""
        self._specs.clear()


async def find_definition(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    version: int | None,
    checked: CheckedSpecs | None = None,
) -> FoundDefinition:
    """The tenant's definition ``name`` (its latest version unless ``version``), else
    the built-in of that name. A tenant's own definition shadows a built-in. With
    ``checked``, a version found there is neither read nor parsed again.

    Raises:
        NotFound: neither exists (or not that version).
    """
    query = select(WorkflowDefinition.version).where(
        WorkflowDefinition.tenant_id == tenant_id, WorkflowDefinition.name == name
    )
    if version is not None:
        query = query.where(WorkflowDefinition.version == version)
    found_version = await session.scalar(query.order_by(WorkflowDefinition.version.desc()).limit(1))
    if found_version is not None:
        known = checked.get(tenant_id, name, found_version) if checked is not None else None
        if known is not None:
            return FoundDefinition(known, found_version, False, checked=True)
        raw = await session.scalar(
            select(WorkflowDefinition.spec)
            .where(
                WorkflowDefinition.tenant_id == tenant_id,
                WorkflowDefinition.name == name,
                WorkflowDefinition.version == found_version,
            )
            .limit(1)
        )
        return FoundDefinition(WorkflowSpec.model_validate(raw), found_version, False)
    built_in = BUILT_IN_DEFINITIONS.get(name)
    if built_in is not None and version in (None, BUILT_IN_VERSION):
        known = checked.get("", name, BUILT_IN_VERSION) if checked is not None else None
        return FoundDefinition(built_in, BUILT_IN_VERSION, True, checked=known is not None)
    raise NotFound(
        f"No workflow definition {name!r}" + (f" version {version}." if version else ".")
    )
