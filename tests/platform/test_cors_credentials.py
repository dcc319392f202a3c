"""CORS never allows credentials: not app-wide, not on a public intake form.

Keys travel in headers the page sets itself, never in cookies, so no response
may say ``Access-Control-Allow-Credentials``: with it, any allowed origin's page
could drive the API with whatever ambient credentials the browser holds. Checked
on the preflight and on the actual request, successful or refused, of every
mounted service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.helpers import running
from tests.intelligence_gateway.intake_api import BETA, ORIGIN, IntakeApi, intake_api
from xynergy.platform.config import Settings
from xynergy.server import build_all_in_one

ALLOWED_ORIGIN = "https://app.example.com"
CREDENTIALS = "access-control-allow-credentials"
ALLOW_ORIGIN = "access-control-allow-origin"
# A private route of each service (answers 401 without a key) and of the admin app.
PRIVATE_PATHS = {
    "/aso-engine": "/api/content",
    "/ai-routing-engine": "/api/usage",
    "/intelligence-gateway": "/api/submissions",
    "/marketing-engine": "/campaigns",
    "/system-runtime": "/api/workflows",
    "/ai-assistant": "/api/conversations",
    "/platform-dashboard": "/api/status",
    "": "/admin/tenants",
}


def preflight(origin: str, method: str = "GET") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def assert_cors_without_credentials(response: httpx.Response, origin: str) -> None:
    """CORS answered for ``origin`` (so the check is not vacuous), without credentials."""
    assert response.headers.get(ALLOW_ORIGIN) == origin, (response.status_code, response.headers)
    assert CREDENTIALS not in response.headers, response.headers


@pytest.fixture
async def app_wide(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = build_all_in_one(make_settings(cors_origins=[ALLOWED_ORIGIN]))
    async with running(app) as client:
        yield client


class TestAppWideCors:
    def test_every_mount_is_covered(self, make_settings: Callable[..., Settings]) -> None:
        app: Starlette = build_all_in_one(make_settings())
        mounts = {mount.path for mount in app.routes if isinstance(mount, Mount)}
        assert mounts == set(PRIVATE_PATHS)

    @pytest.mark.parametrize(("mount", "path"), PRIVATE_PATHS.items())
    async def test_a_preflight_from_an_allowed_origin_allows_no_credentials(
        self, app_wide: httpx.AsyncClient, mount: str, path: str
    ) -> None:
        response = await app_wide.options(mount + path, headers=preflight(ALLOWED_ORIGIN))
        assert response.status_code == 200, response.text
        assert_cors_without_credentials(response, ALLOWED_ORIGIN)

    @pytest.mark.parametrize(("mount", "path"), PRIVATE_PATHS.items())
    async def test_a_refused_request_from_an_allowed_origin_allows_no_credentials(
        self, app_wide: httpx.AsyncClient, mount: str, path: str
    ) -> None:
        response = await app_wide.get(mount + path, headers={"Origin": ALLOWED_ORIGIN})
        assert response.status_code == 401, response.text
        assert_cors_without_credentials(response, ALLOWED_ORIGIN)

    @pytest.mark.parametrize("mount", PRIVATE_PATHS)
    async def test_a_successful_request_from_an_allowed_origin_allows_no_credentials(
        self, app_wide: httpx.AsyncClient, mount: str
    ) -> None:
        response = await app_wide.get(mount + "/healthz", headers={"Origin": ALLOWED_ORIGIN})
        assert response.status_code == 200, response.text
        assert_cors_without_credentials(response, ALLOWED_ORIGIN)


@pytest.fixture
async def intake(make_settings: Callable[..., Settings]) -> AsyncIterator[IntakeApi]:
    # The app-wide list is set too: the form's own CORS must answer on its routes.
    async with intake_api(make_settings(cors_origins=[ALLOWED_ORIGIN])) as api:
        yield api


class TestIntakeFormCors:
    async def test_a_form_preflight_from_a_listed_origin_allows_no_credentials(
        self, intake: IntakeApi
    ) -> None:
        form = await intake.create_form()
        response = await intake.client.options(
            BETA, params={"form": form.public_id}, headers=preflight(ORIGIN, "POST")
        )
        assert response.status_code == 204, response.text
        assert_cors_without_credentials(response, ORIGIN)

    async def test_a_submission_from_a_listed_origin_allows_no_credentials(
        self, intake: IntakeApi
    ) -> None:
        form = await intake.create_form()
        response = await intake.post(BETA, form, intake.beta(form), headers={"Origin": ORIGIN})
        assert response.status_code == 202, response.text
        assert_cors_without_credentials(response, ORIGIN)

    async def test_a_refused_submission_from_a_listed_origin_allows_no_credentials(
        self, intake: IntakeApi
    ) -> None:
        form = await intake.create_form()
        body = intake.beta(form, email="not an address")
        response = await intake.post(BETA, form, body, headers={"Origin": ORIGIN})
        assert response.status_code == 422, response.text
        assert_cors_without_credentials(response, ORIGIN)

    async def test_a_form_token_for_a_listed_origin_allows_no_credentials(
        self, intake: IntakeApi
    ) -> None:
        form = await intake.create_form()
        path = f"/api/forms/{form.public_id}/token"
        preflighted = await intake.client.options(path, headers=preflight(ORIGIN))
        issued = await intake.client.get(path, headers={"Origin": ORIGIN})
        assert (preflighted.status_code, issued.status_code) == (204, 200)
        assert_cors_without_credentials(preflighted, ORIGIN)
        assert_cors_without_credentials(issued, ORIGIN)
