"""Request dependencies of the Platform Dashboard (async: a plain def would use the thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.platform.process_monitor import ProcessMonitor
from xynergy.platform_dashboard.status.board import StatusBoard

__all__ = ["ResourcesDep", "StatusDep"]


async def _status(request: Request) -> StatusBoard:
    board: StatusBoard = request.app.state.dashboard_status
    return board


async def _resources(request: Request) -> ProcessMonitor:
    # The platform's, shared by every service of the process.
    monitor: ProcessMonitor = request.app.state.platform.process
    return monitor


StatusDep = Annotated[StatusBoard, Depends(_status)]
ResourcesDep = Annotated[ProcessMonitor, Depends(_resources)]
