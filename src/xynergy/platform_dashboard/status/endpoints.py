"""GET /api/status."""

from __future__ import annotations

from fastapi import Request, Response

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.routing import api_router, fast_path
from xynergy.platform_dashboard.auth import MetricsReader
from xynergy.platform_dashboard.dependencies import StatusDep
from xynergy.platform_dashboard.status.board import StatusBoard
from xynergy.platform_dashboard.status.schemas import PlatformStatus

__all__ = ["router"]

router = api_router(prefix="/api", tags=["status"])


def _answer(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


async def _from_the_window(request: Request) -> Response:
    # The route's fast path: it runs after authentication, the rate limit and the
    # scope check (routing.SecureRoute), and the answer needs nothing FastAPI would
    # solve or validate — the page's most polled call skips that work.
    board: StatusBoard = request.app.state.dashboard_status
    caller: AuthContext = request.state.auth
    return _answer(await board.render(caller))


@router.get("/status", response_model=PlatformStatus)
@fast_path(_from_the_window)
async def platform_status(reader: MetricsReader, board: StatusDep) -> Response:
    """Every service's health and readiness, the database, Redis, the runtime's queues and the
    AI providers' breakers, from a check at most one window old (its age is in the body)."""
    # Rendered once per check (board.py): the model above documents the body. The fast
    # path answers first; this endpoint carries the route's scopes and its OpenAPI.
    return _answer(await board.render(reader))
