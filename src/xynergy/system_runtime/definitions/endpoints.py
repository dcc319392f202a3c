"""Definitions API: a tenant's versioned workflow definitions, and the operation catalogue.

- ``POST /api/workflow-definitions`` stores a version (n+1 for an existing name);
  a built-in's name is refused, so a run of a built-in is always the shipped one.
- ``GET /api/workflow-definitions`` lists the tenant's own (latest version of each,
  newest first, cursor pages); ``?source=built_in`` lists the built-ins instead.
- ``GET /api/workflow-definitions/{name}`` is the tenant's latest (or ``?version=``)
  or the built-in of that name; ``.../{name}/versions`` pages its versions.
- ``GET /api/workflow-operations`` is the catalogue a step may name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response

from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Conflict
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schemas import Page
from xynergy.system_runtime.auth import ContextDep, WorkflowsReader, WorkflowsWriter
from xynergy.system_runtime.definitions import service
from xynergy.system_runtime.definitions.schemas import (
    DefinitionDetail,
    DefinitionSource,
    DefinitionSummary,
    OperationList,
)
from xynergy.system_runtime.definitions.spec import WorkflowSpec

__all__ = ["router"]

router = api_router(prefix="/api", tags=["workflow definitions"])


# The definition name pattern of the schema (spec.DefinitionName), as a path parameter.
NamePath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_.-]{0,79}$", max_length=80)]


@router.post("/workflow-definitions", status_code=201)
@raises(Conflict)
async def create_definition(
    body: WorkflowSpec,
    request: Request,
    response: Response,
    session: SessionDep,
    auth: WorkflowsWriter,
    context: ContextDep,
) -> DefinitionDetail:
    """Store a definition; an existing name gets its next version.

    Refused with 422 listing every problem when it could not run (a cycle, an
    unknown operation or dependency, a mapping to a step it does not depend on or
    to an undeclared input, a bound exceeded); with 409 for a built-in's name or
    when the tenant's definitions or this name's versions are at their bound.
    """
    created = await service.create_definition(
        session,
        caller=auth,
        spec=body,
        catalogue=context.catalogue,
        settings=context.settings,
    )
    root = request.scope.get("root_path", "")
    response.headers["Location"] = (
        f"{root}/api/workflow-definitions/{created.name}?version={created.version}"
    )
    return created


@router.get("/workflow-definitions")
async def list_definitions(
    session: SessionDep,
    auth: WorkflowsReader,
    page: PageParamsDep,
    source: Annotated[
        DefinitionSource,
        Query(description="tenant: the tenant's own (latest versions); built_in: the shipped."),
    ] = "tenant",
) -> Page[DefinitionSummary]:
    """The tenant's definitions, newest first, one cursor page at a time (or the built-ins)."""
    if source == "built_in":
        return service.list_built_in()
    return await service.list_definitions(session, tenant_id=auth.tenant_id, params=page)


@router.get("/workflow-definitions/{name}")
async def get_definition(
    name: NamePath,
    session: SessionDep,
    auth: WorkflowsReader,
    context: ContextDep,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> DefinitionDetail:
    """One definition: the tenant's latest version (or ``version``), else the built-in."""
    return await service.get_definition(
        session, tenant_id=auth.tenant_id, name=name, version=version, catalogue=context.catalogue
    )


@router.get("/workflow-definitions/{name}/versions")
async def list_versions(
    name: NamePath, session: SessionDep, auth: WorkflowsReader, page: PageParamsDep
) -> Page[DefinitionSummary]:
    """The versions of one of the tenant's definitions, newest first (empty: none)."""
    return await service.list_versions(session, tenant_id=auth.tenant_id, name=name, params=page)


@router.get("/workflow-operations")
async def list_operations(auth: WorkflowsReader, context: ContextDep) -> OperationList:
    """The operations a step may name, with the scopes a run's key needs for each."""
    return service.operations(context.catalogue)
