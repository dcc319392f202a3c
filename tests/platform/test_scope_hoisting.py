"""Scopes declared as typed dependencies are checked by the route, before the body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

from tests.helpers import auth, issue_key, running
from xynergy.platform.app import create_service_app, walk_routes
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings
from xynergy.platform.routing import ACTING_TENANT_HEADER, SecureRoute, api_router

pytestmark = pytest.mark.asyncio

Reader = Annotated[AuthContext, Depends(require_scopes("content:read"))]
Writer = Annotated[AuthContext, Depends(require_scopes("content:write"))]


class Note(BaseModel):
    text: str


def notes_app(settings: Settings) -> FastAPI:
    router = api_router()

    @router.post("/notes")
    async def create_note(note: Note, writer: Writer, reader: Reader) -> dict[str, str]:
        return {"text": note.text, "tenant": writer.tenant_id, "same": str(writer is reader)}

    @router.get("/whoami")
    async def whoami(request: Request, caller: Reader) -> dict[str, str]:
        return {"key": caller.key_id, "path": request.url.path}

    return create_service_app(slug="notes", title="Notes", settings=settings, routers=[router])


class TestScopeHoisting:
    async def test_the_route_knows_its_scopes_and_the_endpoint_gets_the_caller(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = notes_app(make_settings())
        routes = {r.path: r for r in walk_routes(app.routes) if isinstance(r, SecureRoute)}
        assert routes["/notes"].required_scopes == {"content:read", "content:write"}
        assert routes["/whoami"].required_scopes == {"content:read"}
        async with running(app) as client:
            tenant_id, key = await issue_key(
                app.state.platform, scopes=["content:read", "content:write"]
            )
            created = await client.post("/notes", json={"text": "hi"}, headers=auth(key.secret))
            me = await client.get("/whoami", headers=auth(key.secret))
            schema = (await client.get("/openapi.json")).json()
        assert created.json() == {"text": "hi", "tenant": tenant_id, "same": "True"}
        assert me.json() == {"key": key.key.id, "path": "/whoami"}
        parameters = schema["paths"]["/whoami"]["get"].get("parameters", [])
        # The acting-tenant header is documented for admin keys; nothing else is a parameter.
        names = [parameter["name"] for parameter in parameters]
        assert names == [ACTING_TENANT_HEADER], "nothing internal leaks into the API description"

    async def test_a_key_without_the_scope_gets_403_before_its_body_is_read(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = notes_app(make_settings())
        async with running(app) as client:
            _, key = await issue_key(app.state.platform, scopes=["content:read"])
            response = await client.post(
                "/notes",
                content=b"{not json",
                headers={**auth(key.secret), "content-type": "application/json"},
            )
        assert response.status_code == 403
        assert response.json()["detail"] == "This key lacks the scope(s): content:write."
