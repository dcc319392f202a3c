"""The System Runtime's typed dependencies: who may read or change workflows, and
the runtime a request works with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.system_runtime.engine.context import RuntimeContext

__all__ = ["ContextDep", "WorkflowsReader", "WorkflowsWriter"]

WorkflowsReader = Annotated[AuthContext, Depends(require_scopes("workflows:read"))]
WorkflowsWriter = Annotated[AuthContext, Depends(require_scopes("workflows:write"))]


# Async: a plain def would be sent to the thread pool per request.
async def _context(request: Request) -> RuntimeContext:
    context: RuntimeContext = request.app.state.runtime
    return context


ContextDep = Annotated[RuntimeContext, Depends(_context)]
