"""Request dependencies of the Platform Dashboard (async: a plain def would use the thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.platform_dashboard.resources.monitor import ResourceMonitor
from xynergy.platform_dashboard.status.board import StatusBoard

__all__ = ["ResourcesDep", "StatusDep"]


async def _status(request: Request) -> StatusBoard:
    board: StatusBoard = request.app.state.dashboard_status
    return board


async def _resources(request: Request) -> ResourceMonitor:
    monitor: ResourceMonitor = request.app.state.dashboard_resources
    return monitor


StatusDep = Annotated[StatusBoard, Depends(_status)]
ResourcesDep = Annotated[ResourceMonitor, Depends(_resources)]
