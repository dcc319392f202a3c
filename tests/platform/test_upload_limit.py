"""Endpoints marked accepts_uploads take bodies up to max_upload_bytes; others keep max_body_bytes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from tests.helpers import running
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.routing import accepts_uploads, api_router, public

SMALL, LARGE = 2048, 16384


def upload_app(settings: Settings) -> object:
    router = api_router()

    @router.post("/imports/{kind}")
    @public
    @accepts_uploads
    async def upload(kind: str, request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.post("/notes")
    @public
    async def note(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return create_service_app(slug="svc", title="svc", settings=settings, routers=[router])


async def test_uploads_get_the_larger_bound_and_only_they(
    make_settings: Callable[..., Settings],
) -> None:
    app = upload_app(make_settings(max_body_bytes=SMALL, max_upload_bytes=LARGE))
    body = b"x" * (SMALL * 4)
    async with running(app) as client:
        uploaded = await client.post("/imports/csv", content=body)
        noted = await client.post("/notes", content=body)
        too_big = await client.post("/imports/csv", content=b"x" * (LARGE + 1))

        async def stream():  # type: ignore[no-untyped-def]
            for _ in range(LARGE // 1024 + 2):
                yield b"y" * 1024

        streamed = await client.post("/imports/csv", content=stream())
    assert uploaded.json() == {"bytes": SMALL * 4}
    assert noted.status_code == 413
    assert too_big.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "payload_too_large"
