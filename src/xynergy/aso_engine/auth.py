"""Typed auth dependencies of the ASO Engine, shared by its domains."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes

__all__ = ["ContentReader", "ContentWriter", "KeywordsReader", "KeywordsWriter"]

ContentReader = Annotated[AuthContext, Depends(require_scopes("content:read"))]
ContentWriter = Annotated[AuthContext, Depends(require_scopes("content:write"))]
KeywordsReader = Annotated[AuthContext, Depends(require_scopes("keywords:read"))]
KeywordsWriter = Annotated[AuthContext, Depends(require_scopes("keywords:write"))]
