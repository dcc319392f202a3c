"""CORS per form: a listed origin gets itself back, any other origin gets nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.intelligence_gateway.intake_api import BETA, CONTACT, ORIGIN, IntakeApi, intake_api
from xynergy.platform.config import Settings

OTHER_ORIGIN = "https://evil.example"
ACAO = "access-control-allow-origin"


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[IntakeApi]:
    async with intake_api(make_settings(database_url=database_url)) as running_api:
        yield running_api


def preflight_headers(origin: str | None, method: str = "POST") -> dict[str, str]:
    headers = {
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,idempotency-key",
    }
    if origin is not None:
        headers["Origin"] = origin
    return headers


class TestPreflight:
    async def test_a_listed_origin_gets_exactly_itself(self, api: IntakeApi) -> None:
        form = await api.create_form(allowed_origins=["https://other.example", ORIGIN])
        response = await api.client.options(
            BETA, params={"form": form.public_id}, headers=preflight_headers(ORIGIN)
        )
        assert response.status_code == 204, response.text
        assert response.headers[ACAO] == ORIGIN
        assert response.headers["access-control-allow-methods"] == "POST"
        allowed = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {"content-type", "idempotency-key"} <= allowed
        assert "*" not in response.headers["access-control-allow-headers"]
        assert "Origin" in response.headers["vary"]
        assert int(response.headers["access-control-max-age"]) > 0

    @pytest.mark.parametrize(
        "origin", [OTHER_ORIGIN, ORIGIN + ":8443", "http://www.acme.example", "null", None]
    )
    async def test_an_origin_not_listed_gets_no_allow_origin(
        self, api: IntakeApi, origin: str | None
    ) -> None:
        form = await api.create_form()
        response = await api.client.options(
            BETA, params={"form": form.public_id}, headers=preflight_headers(origin)
        )
        assert response.status_code == 403, response.text
        assert ACAO not in response.headers
        assert not any(name.startswith("access-control-") for name in response.headers)

    async def test_an_unknown_form_gets_404_and_no_allow_origin(self, api: IntakeApi) -> None:
        response = await api.client.options(
            BETA, params={"form": "frm_unknown"}, headers=preflight_headers(ORIGIN)
        )
        assert response.status_code == 404
        assert ACAO not in response.headers

    async def test_the_contact_endpoint_does_not_answer_for_a_beta_form(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form(kind="beta")
        response = await api.client.options(
            CONTACT, params={"form": form.public_id}, headers=preflight_headers(ORIGIN)
        )
        assert response.status_code == 404
        assert ACAO not in response.headers

    async def test_the_token_endpoint_preflight_allows_get(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.client.options(
            f"/api/forms/{form.public_id}/token", headers=preflight_headers(ORIGIN, "GET")
        )
        assert response.status_code == 204
        assert response.headers[ACAO] == ORIGIN
        assert response.headers["access-control-allow-methods"] == "GET"


class TestActualRequests:
    async def test_a_submission_from_a_listed_origin_may_be_read(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form), headers={"Origin": ORIGIN})
        assert response.status_code == 202
        assert response.headers[ACAO] == ORIGIN
        assert "Retry-After" in response.headers["access-control-expose-headers"]

    async def test_an_error_for_a_listed_origin_may_be_read(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.post(
            BETA, form, api.beta(form, email="nope"), headers={"Origin": ORIGIN}
        )
        assert response.status_code == 422
        assert response.headers[ACAO] == ORIGIN

    async def test_a_submission_from_another_origin_gets_no_allow_origin(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form), headers={"Origin": OTHER_ORIGIN})
        assert response.status_code == 202
        assert ACAO not in response.headers

    async def test_the_token_answer_carries_the_listed_origin(self, api: IntakeApi) -> None:
        form = await api.create_form()
        allowed = await api.client.get(
            f"/api/forms/{form.public_id}/token", headers={"Origin": ORIGIN}
        )
        refused = await api.client.get(
            f"/api/forms/{form.public_id}/token", headers={"Origin": OTHER_ORIGIN}
        )
        assert allowed.status_code == refused.status_code == 200
        assert allowed.headers[ACAO] == ORIGIN
        assert ACAO not in refused.headers

    async def test_the_token_of_an_unknown_form_is_404(self, api: IntakeApi) -> None:
        response = await api.client.get("/api/forms/frm_unknown/token")
        assert response.status_code == 404


class TestAppWideCorsLeavesFormsAlone:
    """With XYNERGY_CORS_ORIGINS set, the app-wide list must not answer for forms."""

    async def test_form_routes_follow_the_form_and_other_routes_the_app_list(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(cors_origins=[OTHER_ORIGIN])
        async with intake_api(settings) as running_api:
            form = await running_api.create_form(allowed_origins=[ORIGIN])
            own = await running_api.client.options(
                BETA, params={"form": form.public_id}, headers=preflight_headers(ORIGIN)
            )
            app_origin_on_form = await running_api.client.options(
                BETA, params={"form": form.public_id}, headers=preflight_headers(OTHER_ORIGIN)
            )
            app_origin_elsewhere = await running_api.client.options(
                "/api/submissions", headers=preflight_headers(OTHER_ORIGIN, "GET")
            )
        assert own.status_code == 204
        assert own.headers[ACAO] == ORIGIN
        assert own.headers["vary"].count("Origin") == 1
        assert ACAO not in app_origin_on_form.headers
        assert app_origin_elsewhere.headers[ACAO] == OTHER_ORIGIN
