"""Tenants' definitions: create a version, list, read; and the catalogue as shown.

Rules, as documented on the endpoints:
- a definition is checked with :func:`check_definition` before it is stored;
  every problem is reported at once (422);
- creating a name that exists stores version n+1; stored versions never change;
- the names of built-in definitions are refused (409): a run of "campaign-from-research"
  always means the shipped one, never a tenant's look-alike;
- at most ``definitions_max_per_tenant`` names and ``versions_max_per_definition``
  versions of one name (409 beyond; nothing is deleted to make room).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.exceptions import Conflict, ValidationFailed
from xynergy.platform.pagination import PageParams, split_page
from xynergy.platform.schemas import Page
from xynergy.system_runtime.catalogue import Catalogue
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions import repository
from xynergy.system_runtime.definitions.builtins import BUILT_IN_DEFINITIONS
from xynergy.system_runtime.definitions.lookup import BUILT_IN_VERSION, find_definition
from xynergy.system_runtime.definitions.schemas import (
    DefinitionDetail,
    DefinitionSummary,
    OperationList,
    OperationView,
)
from xynergy.system_runtime.definitions.spec import (
    DefinitionProblems,
    WorkflowSpec,
    check_definition,
)
from xynergy.system_runtime.models import WorkflowDefinition

__all__ = [
    "create_definition",
    "get_definition",
    "list_built_in",
    "list_definitions",
    "list_versions",
    "operations",
    "scopes_of",
]

# Two creates of one name at once both draw version n+1; the loser draws again.
_VERSION_ATTEMPTS = 3


def scopes_of(spec: WorkflowSpec, catalogue: Catalogue) -> list[str]:
    """Every scope the definition's operations need, sorted."""
    scopes: set[str] = set()
    for step in spec.steps:
        operation = catalogue.get(step.operation or "")
        if operation is not None:
            scopes |= operation.scopes
    return sorted(scopes)


def _summary(spec: WorkflowSpec, version: int, row: WorkflowDefinition | None) -> DefinitionSummary:
    return DefinitionSummary(
        name=spec.name,
        version=version,
        built_in=row is None,
        description=spec.description,
        steps=len(spec.steps),
        created_at=row.created_at if row is not None else None,
    )


def _row_summary(row: WorkflowDefinition) -> DefinitionSummary:
    return _summary(WorkflowSpec.model_validate(row.spec), row.version, row)


async def create_definition(
    session: AsyncSession,
    *,
    caller: AuthContext,
    spec: WorkflowSpec,
    catalogue: Catalogue,
    settings: RuntimeSettings,
) -> DefinitionDetail:
    """Store ``spec`` as the next version of its name.

    Raises:
        ValidationFailed: the definition could not run (every problem listed).
        Conflict: a built-in's name, or a bound on definitions or versions reached.
    """
    if spec.name in BUILT_IN_DEFINITIONS:
        raise Conflict(f"{spec.name!r} is a built-in definition; choose another name.")
    try:
        check_definition(spec, catalogue=catalogue, settings=settings)
    except DefinitionProblems as exc:
        count = len(exc.problems)
        raise ValidationFailed(
            f"The definition has {count} problem{'s' if count > 1 else ''}: {exc}"
        ) from None
    for _ in range(_VERSION_ATTEMPTS):
        latest = await repository.latest_version(
            session, tenant_id=caller.tenant_id, name=spec.name
        )
        await _check_room(session, caller.tenant_id, spec.name, latest, settings)
        row = WorkflowDefinition(
            id=new_id(),
            tenant_id=caller.tenant_id,
            name=spec.name,
            version=(latest or 0) + 1,
            spec=spec.model_dump(mode="json"),
            created_by_key_id=caller.key_id,
            created_at=utcnow(),
        )
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        return DefinitionDetail(
            **_row_summary(row).model_dump(), spec=spec, required_scopes=scopes_of(spec, catalogue)
        )
    raise Conflict(f"Other versions of {spec.name!r} were being created at once; retry.")


async def _check_room(
    session: AsyncSession,
    tenant_id: str,
    name: str,
    latest: int | None,
    settings: RuntimeSettings,
) -> None:
    if latest is None:
        names = await repository.count_names(session, tenant_id=tenant_id)
        if names >= settings.definitions_max_per_tenant:
            raise Conflict(
                f"The tenant has {names} workflow definitions, the most allowed "
                f"(definitions_max_per_tenant); add a version to an existing one instead."
            )
        return
    versions = await repository.count_versions(session, tenant_id=tenant_id, name=name)
    if versions >= settings.versions_max_per_definition:
        raise Conflict(
            f"{name!r} has {versions} versions, the most allowed "
            f"(versions_max_per_definition); create it under a new name."
        )


async def get_definition(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    version: int | None,
    catalogue: Catalogue,
) -> DefinitionDetail:
    """The tenant's definition (latest unless ``version``) or the built-in of that name.

    Raises:
        NotFound: neither (another tenant's definitions are never found).
    """
    found = await find_definition(session, tenant_id=tenant_id, name=name, version=version)
    created_at = None
    if not found.built_in:
        created_at = await repository.created_at(
            session, tenant_id=tenant_id, name=name, version=found.version
        )
    return DefinitionDetail(
        name=found.spec.name,
        version=found.version,
        built_in=found.built_in,
        description=found.spec.description,
        steps=len(found.spec.steps),
        created_at=created_at,
        spec=found.spec,
        required_scopes=scopes_of(found.spec, catalogue),
    )


async def list_definitions(
    session: AsyncSession, *, tenant_id: str, params: PageParams
) -> Page[DefinitionSummary]:
    """Each of the tenant's definitions at its latest version, newest first."""
    rows = await repository.page_latest(session, tenant_id=tenant_id, params=params)
    items, cursor = split_page(rows, params, lambda row: (row.created_at, row.id))
    return Page[DefinitionSummary](items=[_row_summary(row) for row in items], next_cursor=cursor)


async def list_versions(
    session: AsyncSession, *, tenant_id: str, name: str, params: PageParams
) -> Page[DefinitionSummary]:
    """The versions of one of the tenant's definitions, newest first."""
    rows = await repository.page_versions(session, tenant_id=tenant_id, name=name, params=params)
    items, cursor = split_page(rows, params, lambda row: (row.created_at, row.id))
    return Page[DefinitionSummary](items=[_row_summary(row) for row in items], next_cursor=cursor)


def list_built_in() -> Page[DefinitionSummary]:
    """The built-in definitions: a short fixed list, one page."""
    items = [
        _summary(spec, BUILT_IN_VERSION, None) for _, spec in sorted(BUILT_IN_DEFINITIONS.items())
    ]
    return Page[DefinitionSummary](items=items, next_cursor=None)


def operations(catalogue: Catalogue) -> OperationList:
    """The catalogue as tenants see it, by name."""
    return OperationList(
        items=[
            OperationView(
                name=operation.name,
                service=operation.service,
                method=operation.method,
                path=operation.path,
                scopes=sorted(operation.scopes),
                required_inputs=list(operation.required_inputs),
                body=operation.body,
                description=operation.description,
            )
            for operation in sorted(catalogue, key=lambda operation: operation.name)
        ]
    )
