"""Typed auth dependencies of the AI Routing Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes

__all__ = ["AiCaller"]

AiCaller = Annotated[AuthContext, Depends(require_scopes("ai:generate"))]
