"""Who may read the dashboard's data.

The platform's health and resources are not tenant data: an operator key
(``admin``, or ``metrics:read`` on the operator tenant) and a tenant's
``metrics:read`` key see the same status and resources.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes

__all__ = ["METRICS_SCOPE", "MetricsReader"]

METRICS_SCOPE = "metrics:read"

MetricsReader = Annotated[AuthContext, Depends(require_scopes(METRICS_SCOPE))]
